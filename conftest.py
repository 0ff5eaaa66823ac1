"""Thin: load the bn-props pytest plugin in this checkout even before it is installed (when
installed, its pytest11 entry point of the same name has loaded it and this is a no-op)."""
pytest_plugins = ("bn_reference.harness.plugin",)
