"""The pytest integration: the plugin (options, subjects, matrix) and when it takes part in a
run (activation), Hypothesis profiles, assertion helpers, the per-call watchdog, crash
handling, test ids, the shared example database, the JSON/Markdown report, the runnable
repros, and the ``bn-props`` command (cli)."""
