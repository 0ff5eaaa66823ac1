"""Import TensorFlow once, quietly (its C++ start-up log is noise in a test report).

TensorFlow is an optional extra (``pip install "bn-props[tensorflow]"``): the seed layer,
``tf_nn``, the Keras layers and the fused kernel import this module on their first call,
and without TensorFlow it raises ``FrameworkMissing`` naming the extra.
"""
import os

from bn_reference.subjects._framework import require

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

tf = require("tensorflow", "tensorflow")
keras = require("keras", "tensorflow")  # Keras 3; tf.keras is a lazy shim of it

__all__ = ["tf", "keras"]
