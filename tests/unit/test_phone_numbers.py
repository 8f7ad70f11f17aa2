"""Phone numbers: one pattern at every edge, masked wherever a role may not see them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.phone_numbers import BadPhoneNumber, checked, from_caller_id, is_valid, mask


@pytest.mark.parametrize("number", ["13812345678", "+8613812345678", "110", "6001"])
def test_numbers_that_are_numbers_pass(number: str) -> None:
    assert is_valid(number) and checked(number) == number


@pytest.mark.parametrize(
    "number",
    ["7001\nContext: hotline-diag", "1@trunk&PJSIP/999", "", "12", "1" * 21, "138 1234 5678", "+"],
)
def test_anything_else_is_refused_with_the_reason(number: str) -> None:
    assert not is_valid(number)
    with pytest.raises(BadPhoneNumber, match="is not a phone number") as refused:
        checked(number, "caller_number")
    assert "\n" not in str(refused.value)


def test_caller_id_keeps_digits_and_is_bounded() -> None:
    assert from_caller_id('"Zhang" <+86 138-1234-5678>') == "+8613812345678"
    assert from_caller_id("anonymous") == "unknown"
    assert len(from_caller_id("9" * 200)) == 20


def test_mask_keeps_three_and_four() -> None:
    assert mask("13812345678") == "138****5678"
    assert mask("+8613812345678") == "+86*******5678"
    assert mask("6001") == "6***"
    assert mask("unknown") == "unknown" and mask(None) == ""


@given(st.text(max_size=60))
def test_whatever_comes_in_a_stored_caller_is_valid_or_unknown(raw: str) -> None:
    stored = from_caller_id(raw)
    assert stored == "unknown" or is_valid(stored)
    shown = mask(stored)
    assert len(shown) == len(stored)
    assert sum(c.isdigit() for c in shown) <= 7  # never the whole number
