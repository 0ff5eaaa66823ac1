"""Subject vs the float64 reference, within the error model (``bn_reference.mathematics.tolerance``)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bn_reference.mathematics import strategies as bst
from bn_reference.mathematics.laws import check_agreement, run


@pytest.mark.bn_family("standard", "rms")
@given(data=st.data())
def test_agrees_with_float64_reference(subject, dtype, data):
    """|y - y64| <= B elementwise, where y64 = (x - mu)/sqrt(sigma^2 + eps) * gamma + beta in
    float64 (biased sigma^2 over the reduced axes) and B is the rounding bound of a correct
    implementation in x's dtype: it grows with N and with |mu|/sigma (tolerance module)."""
    case = bst.draw_case(data, subject, dtype)
    check_agreement(run(subject, case), case)

