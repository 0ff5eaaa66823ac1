"""The bn-props property suite: one law per test, its docstring stating the mathematics.

Installed as ``bn_reference.properties`` (``pytest --pyargs bn_reference.properties``);
in the checkout it is read and run here.
"""

# The modules whose laws are those of the built-in TensorFlow layers (the seed notebook's
# golden values, the Keras layers, mixed precision): none of their tests takes a subject, so
# a run on chosen subjects (--bn-impl) does not collect them (bn_reference.harness.plugin),
# and without TensorFlow they skip. tests/test_plugin.py checks this list against the suite.
BUILT_IN_LAW_MODULES = ("test_seed_golden.py", "test_layers.py", "test_mixed_precision.py")
