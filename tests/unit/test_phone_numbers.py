"""Phone numbers: one pattern at every edge, masked wherever a role may not see them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.phone_numbers import BadPhoneNumber, checked, from_caller_id, is_valid, mask, mask_in_text


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
    assert mask("6001") == "6**1"
    assert mask("unknown") == "unknown" and mask(None) == ""


def test_short_numbers_show_at_most_half_their_digits() -> None:
    assert mask("87654321") == "87****21"  # 8 digits: 4 shown, never 7
    assert mask("0105551234") == "010*****34"
    assert mask("1234567") == "12****7"
    assert mask("110") == "1**"
    assert mask("+12345678") == "+12****78"


@given(st.from_regex(r"\A\+?[0-9]{3,20}\Z"))
def test_a_mask_hides_at_least_half_of_a_short_number_and_four_digits_of_any(
    number: str,
) -> None:
    shown = mask(number)
    digits = number.lstrip("+")
    visible = [i for i, c in enumerate(shown) if c.isdigit()]
    assert len(shown) == len(number) and shown.startswith("+") == number.startswith("+")
    assert all(shown[i] == number[i] for i in visible)  # digits shown are the number's own
    assert set(shown.lstrip("+")) - set("0123456789") <= {"*"}
    hidden = shown.count("*")
    if len(digits) < 11:
        assert len(visible) <= len(digits) // 2  # at most half of a short number
    else:
        assert hidden >= 4 and len(visible) <= 7  # a mobile number: 138****5678
    # what is shown is a prefix and a suffix only: the middle is hidden in one run
    assert re.fullmatch(r"\+?[0-9]*\**[0-9]*", shown)


@given(st.text(max_size=60))
def test_whatever_comes_in_a_stored_caller_is_valid_or_unknown(raw: str) -> None:
    stored = from_caller_id(raw)
    assert stored == "unknown" or is_valid(stored)
    shown = mask(stored)
    assert len(shown) == len(stored)
    assert sum(c.isdigit() for c in shown) <= 7  # never the whole number


def test_a_number_ending_a_file_name_is_masked_in_log_text() -> None:
    """Recording names end with the caller's number: `…_13800138000.wav` in a log line."""
    line = "shipped 2026/11/26/ast1-1700000000.12_13800138000.wav (call ast1-1700000000.12)"
    shown = mask_in_text(line)
    assert "13800138000" not in shown
    assert "ast1-1700000000.12" in shown  # the Uniqueid is an id, not a number to hide
    assert mask_in_text("caller 13800138000.") == f"caller {mask('13800138000')}."
