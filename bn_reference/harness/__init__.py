"""The pytest integration: the plugin (options, subjects, matrix), Hypothesis profiles,
assertion helpers, the per-call watchdog, crash handling, the shared example database,
the JSON/Markdown report and the runnable repros."""
