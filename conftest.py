"""Thin: load the bn-props pytest plugin for this checkout (options, subjects, profiles)."""
pytest_plugins = ("bn_reference.plugin", "bn_reference.exampledb")
