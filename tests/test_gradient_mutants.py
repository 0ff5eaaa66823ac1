"""The gradient properties catch wrong gradients (``bn_reference.selftest.grad_mutants``) and pass a
correct hand-written one.

Each law of ``bn_reference.mathematics.gradients.GRADIENT_LAWS`` (the check the property in
``properties/test_gradients.py`` calls) is run against each mutant over up to EXAMPLES
derandomized Hypothesis examples, without shrinking: a mutant is caught by a law when some
example raises AssertionError. Every law aimed at a mutant must catch it; no law may fail
the correct variant.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import gradients as gr
from bn_reference.harness.profiles import probe_settings
from bn_reference.selftest.grad_mutants import GRADIENT_CORRECT, GRADIENT_MUTANTS

pytestmark = [pytest.mark.meta, pytest.mark.gradients]

EXAMPLES = 50
_SETTINGS = probe_settings(EXAMPLES)


def failure(law, fn, dtype="float32"):
    """The first AssertionError message of ``law`` on ``fn`` over EXAMPLES examples, or None."""

    @_SETTINGS
    @given(data=st.data())
    def probe(data):
        law(fn, *gr.grad_cases(data, fn, dtype))

    try:
        probe()
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", list(GRADIENT_MUTANTS))
def test_mutant_is_caught(name):
    """Every law aimed at the mutant fails it on some example (the row is printed)."""
    fn, aimed = GRADIENT_MUTANTS[name]
    row = {law: failure(check, fn) for law, check in gr.GRADIENT_LAWS.items()}
    print(f"\n{name}: " + ", ".join(f"{law}={'KILL' if msg else 'pass'}" for law, msg in row.items()))
    survived = [law for law in aimed if row[law] is None]
    assert not survived, f"mutant {name} ({fn.__doc__.strip().splitlines()[0]}) survived {survived}"


@pytest.mark.parametrize("law", list(gr.GRADIENT_LAWS))
@pytest.mark.parametrize("name", list(GRADIENT_CORRECT))
def test_correct_variant_passes(name, law):
    """A correct hand-written gradient passes every law (no false alarm)."""
    msg = failure(gr.GRADIENT_LAWS[law], GRADIENT_CORRECT[name])
    assert msg is None, f"correct variant {name} failed {law}:\n{msg}"

