"""Import TensorFlow once, quietly (its C++ start-up log is noise in a test report)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import keras  # noqa: E402  (Keras 3; tf.keras is a lazy shim of it)

__all__ = ["tf", "keras"]
