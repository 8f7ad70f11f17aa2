"""The short code that lets a citizen hear a ticket's progress from another phone.

A ticket's status is personal: the progress query speaks it to the number that
opened the ticket, or to a caller who keys the four-digit code read out with the
ticket number when it was created. The code is an HMAC of the ticket number
under a secret of this installation, so it needs no column and cannot be
derived from the number alone. The secret is `HotlineConfig.ticket_code_secret`:
$ivr.ticket_code_secret_env, which every FastAGI host of one hotline must set
alike (a code read out by one host must open the ticket on the other), else
one generated once in the state folder.
"""

from __future__ import annotations

import hashlib
import hmac

CODE_DIGITS = 4


def ticket_code(secret: str, number: str) -> str:
    """The ticket's verification code: four digits."""
    digest = hmac.new(secret.encode(), f"ticket:{number}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_matches(secret: str, number: str, keyed: str | None) -> bool:
    """Constant-time check of what the caller keyed."""
    return bool(keyed) and hmac.compare_digest(ticket_code(secret, number), keyed or "")
