"""Same seed, same examples: what a test draws depends on its seed and its strategies only,
not on which modules the process happened to import.

Hypothesis (since 6.131) sometimes draws a literal found in the source of a *local* module
(any imported module outside the standard library and site-packages, test files excepted):
``hypothesis.internal.conjecture.providers._get_local_constants`` collects them, and
recollects whenever ``sys.modules`` grows. Whether such a constant is drawn, and which,
comes from the test's random stream, so the pool's size and contents steer every later
choice of the example. In bn-props the pool changed during a run: subjects import
``bn_reference.subjects._tf``, ``seed_notebook`` and the like lazily, on their first call,
and the first call happens in whichever test the worker runs first; a plugin or subject
module given on the command line (a user's ``mypkg.bn``, a benchmark's recorder) adds its
own literals. So the same derandomized (``ci``) test drew different examples under
``-n 1`` and ``-n 2``, or next to other subjects, and a ``--hypothesis-seed`` printed by one
run did not replay in another. It was also unfair to the kill matrix: a mutant in a local
module lent its own literals to the search, which a subject installed in site-packages (TF,
PyTorch) never does.

``forget_local_constants()`` (called by the plugin in every bn-props run) makes the local
pool empty for the rest of the process. Hypothesis' global constants (the edge values of each
type: 0, +-inf, subnormals, 2**k +- 1...) are unchanged, and apply everywhere alike.
``tests/test_determinism.py`` checks that importing a module full of literals no longer
changes what a derandomized test draws.
"""
from __future__ import annotations

__all__ = ["forget_local_constants", "local_constants_forgotten"]


def _empty_pool():
    return _EMPTY


_EMPTY = None
_ORIGINAL = None  # Hypothesis' own pool function (the self-test puts it back to show the effect)


def forget_local_constants() -> bool:
    """Replace Hypothesis' local-constant pool by an empty one. Returns False (and changes
    nothing) on a Hypothesis without that pool (older than 6.131, or reorganised)."""
    global _EMPTY, _ORIGINAL
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        return False
    if not callable(getattr(providers, "_get_local_constants", None)):
        return False
    if _EMPTY is None:
        _EMPTY = Constants()
    if providers._get_local_constants is not _empty_pool:
        _ORIGINAL = providers._get_local_constants
    providers._get_local_constants = _empty_pool
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if cache is not None:
        cache.clear()  # permitted-constant tuples built from the old pool
    return True


def local_constants_forgotten() -> bool:
    """Whether ``forget_local_constants`` is in effect."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        return False
    return getattr(providers, "_get_local_constants", None) is _empty_pool


# -- pytest plugin (loaded by bn_reference.harness.plugin) ----------------------------------


def pytest_configure(config):
    from bn_reference.harness import activation

    if activation.is_active(config):  # an inert plugin leaves other projects' Hypothesis alone
        forget_local_constants()
