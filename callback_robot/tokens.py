"""The survey's proof of origin: a token only the robot's Originate can have put on a channel.

The robot originates each survey call with `HOTLINE_ATTEMPT` and
`HOTLINE_ATTEMPT_TOKEN`, an HMAC of the attempt id under the installation's
key. The survey routes accept a channel only with the right token, so a local
process that connects to FastAGI and claims to be "attempt 42" cannot answer
(or end) someone else's survey: the figures that rank departments stay the
citizens' own.
"""

from __future__ import annotations

import hashlib
import hmac


def attempt_token(key: str, attempt_id: int) -> str:
    """The token for one attempt (hex, 32 characters)."""
    message = f"survey-attempt:{attempt_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


def token_matches(key: str, attempt_id: int, token: str | None) -> bool:
    """Constant-time check of a channel's token."""
    return bool(token) and hmac.compare_digest(attempt_token(key, attempt_id), str(token))
