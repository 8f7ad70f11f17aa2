"""Agent seats: the PJSIP endpoints agents' phones register as, and their passwords.

Asterisk learns its endpoints from files, so the seats are rendered ahead of
the people (`agents.webrtc_seats` browser phones, `agents.desk_seats` desk
phones); an agent account is bound to a free seat when it is made. A seat's
password is derived from the installation's agent key (HMAC), so the store
keeps no SIP password: the renderer writes Asterisk's copy, and the console
hands the logged-in agent's browser its own, and nobody else's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

SeatKind = Literal["webrtc", "desk"]
PREFIX: dict[SeatKind, str] = {"webrtc": "agent-w", "desk": "agent-d"}


@dataclass(frozen=True)
class Seat:
    """One agent phone endpoint (`agent-w001`: a browser phone, `agent-d001`: a desk phone)."""

    endpoint: str
    kind: SeatKind

    @property
    def interface(self) -> str:
        """The dial string app_queue rings and watches (its state_interface too)."""
        return f"PJSIP/{self.endpoint}"


def seats(webrtc: int, desk: int) -> list[Seat]:
    """Every seat of an installation, browser phones first."""
    return [Seat(f"{PREFIX['webrtc']}{n:03d}", "webrtc") for n in range(1, webrtc + 1)] + [
        Seat(f"{PREFIX['desk']}{n:03d}", "desk") for n in range(1, desk + 1)
    ]


def seat_password(key: str, endpoint: str) -> str:
    """The seat's SIP password: 24 characters derived from the installation's agent key."""
    digest = hmac.new(key.encode(), f"seat:{endpoint}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")[:24]
