"""What the knowledge base answered: offers, whether they were heard and accepted, true
deflection per entry, and the consultations it could not answer (gaps).

"Accepted" is what the caller pressed; *true* deflection asks the store whether they
came back: an accepted offer counts only if no new ticket from that number in the
entry's category was accepted within `kb.true_deflection_days`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.vocabulary import RequestType
from db.models import KbEntry, KbOffer, Ticket, utcnow
from kb.matching import Matcher, terms

CHANNELS = ("queue", "menu", "speech", "agent")


def record_offer(
    session: Session,
    entry_id: int,
    channel: str,
    *,
    query: str | None = None,
    score: float | None = None,
    caller_number: str | None = None,
    uniqueid: str | None = None,
    ticket_id: int | None = None,
    agent_id: int | None = None,
    at: datetime | None = None,
) -> KbOffer:
    """Write one offer (before it is read out: an offer cut off by a hang-up still counts)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")
    offer = KbOffer(
        entry_id=entry_id,
        channel=channel,
        query=query,
        score=score,
        caller_number=caller_number,
        uniqueid=uniqueid,
        ticket_id=ticket_id,
        agent_id=agent_id,
        offered_at=at or utcnow(),
    )
    session.add(offer)
    session.flush()
    return offer


def mark_heard(session: Session, offer_id: int) -> None:
    """The answer was played (or shown) to the end."""
    offer = session.get(KbOffer, offer_id)
    if offer is not None:
        offer.heard = True


def mark_accepted(session: Session, offer_id: int, ticket_id: int | None = None) -> None:
    """The caller pressed 1 (answered) or the agent closed the ticket with the entry."""
    offer = session.get(KbOffer, offer_id)
    if offer is not None:
        offer.heard = offer.accepted = True
        offer.ticket_id = ticket_id if ticket_id is not None else offer.ticket_id


@dataclass(frozen=True)
class EntryFigures:
    """One entry's offers over a span: offered, heard, accepted, truly deflected."""

    key: str
    title: str
    offered: int
    heard: int
    accepted: int
    deflected: int

    @property
    def deflection_rate(self) -> float | None:
        return self.deflected / self.offered if self.offered else None


def _deflected(session: Session, start: datetime, end: datetime, days: int) -> Counter[str]:
    """Per entry key, the accepted offers of [start, end) whose caller did not come back
    with a new ticket in the entry's category within days.

    The window is compared in Python: date arithmetic inside SQL differs between SQLite
    and PostgreSQL, and the candidate tickets are few (the accepting callers' numbers).
    """
    accepted = session.execute(
        select(
            KbEntry.key,
            KbEntry.category,
            KbOffer.caller_number,
            KbOffer.offered_at,
            KbOffer.ticket_id,
        )
        .join(KbEntry, KbEntry.id == KbOffer.entry_id)
        .where(
            KbOffer.offered_at >= start,
            KbOffer.offered_at < end,
            KbOffer.accepted.is_(True),
            KbOffer.caller_number.is_not(None),
        )
    ).all()
    numbers = {row.caller_number for row in accepted}
    later: dict[str, list[tuple[int, str | None, datetime]]] = {}
    if numbers:
        for ticket_id, number, category, at in session.execute(
            select(Ticket.id, Ticket.caller_number, Ticket.category, Ticket.accepted_at).where(
                Ticket.caller_number.in_(numbers),
                Ticket.accepted_at >= start,
                Ticket.accepted_at < end + timedelta(days=days),
            )
        ):
            later.setdefault(number, []).append((ticket_id, category, at))
    result: Counter[str] = Counter()
    for key, category, number, offered_at, own_ticket in accepted:
        came_back = any(
            ticket_id != own_ticket
            and ticket_category == category
            and offered_at < at <= offered_at + timedelta(days=days)
            for ticket_id, ticket_category, at in later.get(number, [])
        )
        result[key] += 0 if came_back else 1
    return result


def deflection(session: Session, start: datetime, end: datetime, days: int) -> list[EntryFigures]:
    """Per entry key, the offers made in [start, end), most offered first."""
    rows = session.execute(
        select(
            KbEntry.key,
            func.max(KbEntry.title),
            func.count(KbOffer.id),
            func.sum(case((KbOffer.heard.is_(True), 1), else_=0)),
            func.sum(case((KbOffer.accepted.is_(True), 1), else_=0)),
        )
        .join(KbEntry, KbEntry.id == KbOffer.entry_id)
        .where(KbOffer.offered_at >= start, KbOffer.offered_at < end)
        .group_by(KbEntry.key)
        .order_by(func.count(KbOffer.id).desc(), KbEntry.key)
    )
    deflected = _deflected(session, start, end, days)
    return [
        EntryFigures(key, title, int(n), int(h or 0), int(a or 0), deflected[key])
        for key, title, n, h, a in rows
    ]


@dataclass
class Gap:
    """A word that runs through the span's consultations no entry answers."""

    term: str
    count: int
    tickets: list[str] = field(default_factory=list)  # a few ticket numbers, as examples


def gaps(
    session: Session,
    matcher: Matcher,
    start: datetime,
    end: datetime,
    threshold: float,
    top: int = 10,
) -> list[Gap]:
    """The most frequent terms of the span's 咨询 tickets that no entry matches over the
    threshold, each counted once per ticket, with up to three example tickets."""
    rows = session.execute(
        select(Ticket.number, Ticket.description, Ticket.transcript).where(
            Ticket.request_type == RequestType.CONSULTATION,
            Ticket.accepted_at >= start,
            Ticket.accepted_at < end,
        )
    )
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for number, description, transcript in rows:
        text = description or transcript or ""
        found = matcher.search(text, 1)
        if not text.strip() or (found and found[0].score >= threshold):
            continue
        for term in {t for t in terms(text) if len(t) >= 2}:
            counts[term] += 1
            examples.setdefault(term, []).append(number)
    return [Gap(term, n, sorted(examples[term])[:3]) for term, n in counts.most_common(top)]
