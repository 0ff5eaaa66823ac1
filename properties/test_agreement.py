"""Subject vs the float64 reference, within the error model (``bn_reference.tolerance``)."""
from hypothesis import given

from bn_reference import strategies as bst
from bn_reference.laws import check_agreement, run


@given(case=bst.bn_cases())
def test_agrees_with_float64_reference(subject, case):
    """|y - y64| <= B elementwise, where y64 = (x - mu)/sqrt(sigma^2 + eps) * gamma + beta in
    float64 (biased sigma^2 over the reduced axes) and B is the rounding bound of a correct
    float32 implementation: it grows with N and with |mu|/sigma (tolerance module)."""
    check_agreement(run(subject, case), case)
