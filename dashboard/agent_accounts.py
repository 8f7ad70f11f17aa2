"""Agent accounts: a console user with the role `agent`, bound to a seat of their own.

The seat is the PJSIP endpoint their phone registers as (core.seats); its
password is derived, not stored, and handed only to the agent's own browser.
A scripted agent (tests, demo, bench) has no seat: app_queue rings a Local
channel that answers by script (dialplans/sim-citizen.conf, `sim-agent`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from agents.store import SCRIPTED, bind_seat
from core.config import HotlineConfig
from core.seats import seats
from dashboard.users import UserError, add_user
from db.models import Agent

PHONES = ("webrtc", "desk", SCRIPTED)


def add_agent(
    session: Session,
    config: HotlineConfig,
    username: str,
    password_hash: str,
    phone: str = "webrtc",
    queues: Iterable[str] | None = None,
    team: str | None = None,
) -> Agent:
    """A new agent account on a free seat of `phone`, in `queues` (default: every queue)."""
    if phone not in PHONES:
        raise UserError(f"phone {phone!r} is not one of {', '.join(PHONES)}")
    known = [queue.name for queue in config.queues]
    chosen = list(queues) if queues is not None else known
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise UserError(f"queues {unknown or chosen} are not among {', '.join(known)}")
    user = add_user(session, username, password_hash, "agent", None)
    available = seats(config.agents.webrtc_seats, config.agents.desk_seats)
    return bind_seat(session, user, available, phone, chosen, team)
