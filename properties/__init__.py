"""The bn-props property suite: one law per test, its docstring stating the mathematics.

Installed as ``bn_reference.properties`` (``pytest --pyargs bn_reference.properties``);
in the checkout it is read and run here.
"""
