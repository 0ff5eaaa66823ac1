"""Tools that test the tests: the mutant catalogues, the kill matrix, the flakiness guard
(used by the repository's self-tests in ``tests/``; not part of a user's run)."""
