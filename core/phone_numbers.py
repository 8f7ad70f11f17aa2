"""Citizens' phone numbers: the one pattern they must match, and how they are shown masked.

A number from outside (CallerID, an import, a web form) becomes an AMI field,
a dial string or a file name only after it matched `PATTERN`; anything else is
refused where it enters. Logs and pages for roles that may not see numbers show
`mask(number)`: `13812345678` -> `138****5678`, a short number at most half its digits.
"""

from __future__ import annotations

import re

MAX_DIGITS = 20  # E.164 allows 15; extensions and prefixes get a little room
PATTERN = re.compile(rf"^\+?[0-9]{{3,{MAX_DIGITS}}}$")
UNKNOWN = "unknown"


class BadPhoneNumber(ValueError):
    """A number that is not digits with an optional leading '+', 3 to 20 digits long."""


def is_valid(number: str) -> bool:
    """Digits only, an optional leading '+', 3 to 20 digits."""
    return bool(PATTERN.match(number))


def checked(number: str, what: str = "phone number") -> str:
    """The number if valid; else BadPhoneNumber saying why (control characters escaped)."""
    if is_valid(number):
        return number
    shown = number.encode("unicode_escape").decode("ascii")[:40]
    raise BadPhoneNumber(
        f"{what} {shown!r} is not a phone number (digits, an optional leading +, "
        f"3 to {MAX_DIGITS} digits)"
    )


def from_caller_id(raw: str) -> str:
    """A CallerID as the IVR stores it: its digits (and a leading +), bounded; else 'unknown'."""
    first = next((c for c in raw if c == "+" or (c.isascii() and c.isdigit())), "")
    plus = first == "+"
    digits = "".join(c for c in raw if c.isascii() and c.isdigit())[:MAX_DIGITS]
    number = ("+" if plus else "") + digits
    return number if is_valid(number) else UNKNOWN


def mask(number: str | None) -> str:
    """`138****5678`: a mobile-length number (11 digits or more) keeps its first three and
    last four characters; a shorter one shows at most half its digits, at most three in
    front and two at the end (`87****21`, `6**1`, `1**`)."""
    if not number:
        return ""
    if number == UNKNOWN:
        return number
    plus, digits = ("+", number[1:]) if number.startswith("+") else ("", number)
    if len(digits) >= 11:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    shown = len(digits) // 2
    front = min(3, (shown + 1) // 2)
    back = min(2, shown - front)
    hidden = len(digits) - front - back
    return plus + digits[:front] + "*" * hidden + (digits[-back:] if back else "")


_log_full_numbers = (
    False  # process-wide: set once at start-up from config (privacy.log_full_numbers)
)


def log_full_numbers(enabled: bool) -> None:
    """Let log lines carry whole numbers (a debugging session only; off by default)."""
    global _log_full_numbers
    _log_full_numbers = enabled


def for_log(number: str | None) -> str:
    """A number as a log line may show it: masked, unless full numbers were switched on."""
    return (number or "") if _log_full_numbers else mask(number)


# 7+ digits, not part of an id (1764130000.42, ast1-1764130000.42); a number that ends a
# sentence or a file name (…_13800138000.wav) is still a number
LONG_DIGITS = re.compile(r"(?<![0-9.-])\+?[0-9]{7,}(?![0-9]|\.[0-9])")


def mask_in_text(text: str) -> str:
    """Every phone-like run of 7+ digits in text masked (not ids like 1764130000.42)."""
    if _log_full_numbers:
        return text
    return LONG_DIGITS.sub(lambda m: mask(m.group(0)), text)
