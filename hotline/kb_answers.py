"""The knowledge base as the IVR's `KnowledgeAnswers` (the two features meet only here).

The queue offers the season's top entries: the live entries of the line ranked by
how many of the last four weeks' 咨询 tickets each answers best (over
`kb.threshold`), ties by title. Ranking reads up to 5,000 tickets through the
matcher, seconds of work, so it is never done on a call but once: the first call
of a process on a line with no ranking yet. After that a call takes the last
ranking, and a ranking older than `RANK_SECONDS` is recomputed in the background
(`StoreAnswers.refresh`, also run by `keep_ranked` on a timer); a new or edited
entry shows within that time. An answered call's ticket is closed at once as explained
(直办, source ivr-kb) with no unit: the unit rates group tickets by their
department, so it is in the hotline's totals and in no unit's rates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.vocabulary import (
    KB_ANSWERED_SOURCE,
    ClosedAs,
    EventKind,
    Handling,
    RequestType,
    TicketStatus,
)
from db.calls import ensure_call
from db.models import KbEntry, Ticket, utcnow
from db.session import unit_of_work
from db.tickets import add_event, create_ticket_for_call, line_by_did
from ivr.answers import Answer, Asker
from kb.entries import live_entries, matcher
from kb.matching import Matcher, offered
from kb.offers import mark_accepted, mark_heard, record_offer

log = logging.getLogger(__name__)
SEASON = timedelta(weeks=4)
RANK_SECONDS = 600.0  # a ranking older than this is recomputed, off the call
MAX_CONSULTATIONS = 5000  # the newest of the four weeks; enough to rank a handful of entries
SOURCE = KB_ANSWERED_SOURCE


def answer_of(row: KbEntry, score: float | None = None) -> Answer:
    return Answer(row.id, row.key, row.title, row.answer_zh, row.answer_en, row.category, score)


def season_counts(
    session: Session, found: Matcher, now: datetime, threshold: float
) -> Counter[str]:
    """Per entry key, the last four weeks' 咨询 tickets it is the best match for."""
    texts = session.execute(
        select(Ticket.description, Ticket.transcript)
        .where(
            Ticket.request_type == RequestType.CONSULTATION,
            Ticket.accepted_at >= now - SEASON,
            Ticket.accepted_at < now,
        )
        .order_by(Ticket.accepted_at.desc())
        .limit(MAX_CONSULTATIONS)
    )
    counts: Counter[str] = Counter()
    for description, transcript in texts:
        text = description or transcript or ""
        best = offered(found.search(text, 1), threshold) if text.strip() else []
        if best:
            counts[best[0].entry_key] += 1
    return counts


def top_entries(
    session: Session, did: str, now: datetime, threshold: float, k: int, tz: tzinfo
) -> list[Answer]:
    """The line's live entries most asked about in the last four weeks; ties by title."""
    rows = live_entries(session, now.astimezone(tz).date(), {did})
    if not rows:
        return []
    counts = season_counts(session, matcher(rows), now, threshold)
    ranked = sorted(rows, key=lambda r: (-counts[r.key], r.title, r.key))
    return [answer_of(r) for r in ranked[:k]]


def best_entry(
    session: Session, text: str, did: str, day_at: datetime, threshold: float, tz: tzinfo
) -> Answer | None:
    """The line's live entry that best answers text, if it clears the threshold."""
    rows = live_entries(session, day_at.astimezone(tz).date(), {did})
    found = offered(matcher(rows).search(text, 1), threshold) if rows else []
    if not found:
        return None
    row = next(r for r in rows if r.key == found[0].entry_key)
    return answer_of(row, found[0].score)


def answered_ticket(
    session: Session, answer: Answer, asker: Asker, at: datetime, tz: tzinfo
) -> Ticket:
    """The call's ticket, closed at once as explained (直办, no unit), or the one it has."""
    ensure_call(session, uniqueid=asker.uniqueid, caller_number=asker.number, did=asker.did, at=at)
    ticket, created = create_ticket_for_call(
        session,
        asker.uniqueid,
        caller_number=asker.number,
        local_day=at.astimezone(tz).date(),
        accepted_at=at,
        line=line_by_did(session, asker.did),
        request_type=RequestType.CONSULTATION,
        category=answer.category,
        description=f"知识库自助解答 answered by the knowledge base: {answer.title}",
        source=SOURCE,
    )
    if created:
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = at
        ticket.closed_as = ClosedAs.EXPLAINED
        ticket.handling = Handling.DIRECT
        ticket.reply = answer.answer_zh
        add_event(
            session, ticket, EventKind.CLOSED, actor=SOURCE, at=at, note=f"直办 kb {answer.key}"
        )
    return ticket


class StoreAnswers:
    """`ivr.answers.KnowledgeAnswers` over the store's knowledge base, off the event loop."""

    def __init__(
        self,
        config: HotlineConfig,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = utcnow,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.clock = clock
        self.ticks = ticks  # the age of a ranking, on a clock that never jumps
        self._ranked: dict[str, tuple[float, list[Answer]]] = {}
        self._ranking: dict[str, asyncio.Task[list[Answer]]] = {}

    def _in_store(self, work: Callable[[Session], object]) -> object:
        with unit_of_work(self.sessions) as session:
            return work(session)

    async def _run(self, work: Callable[[Session], object]) -> object:
        return await asyncio.to_thread(self._in_store, work)

    async def top(self, did: str) -> list[Answer]:
        """The line's last ranking; computed here only if this process has none yet."""
        kept = self._ranked.get(did)
        if kept is None:
            return await self.rank(did)
        if self.ticks() - kept[0] >= RANK_SECONDS:
            self._rank_later(did)
        return kept[1]

    async def rank(self, did: str) -> list[Answer]:
        """Rank the line's entries now and keep the ranking; one ranking per line at a time."""
        running = self._ranking.get(did)
        if running is None or running.done():
            running = asyncio.ensure_future(self._rank(did))
            self._ranking[did] = running
        return await asyncio.shield(running)  # a hung-up caller does not cancel the ranking

    async def _rank(self, did: str) -> list[Answer]:
        kb = self.config.kb
        ranked: list[Answer] = await self._run(  # type: ignore[assignment]
            lambda s: top_entries(s, did, self.clock(), kb.threshold, kb.offer_top, self.config.tz)
        )
        self._ranked[did] = (self.ticks(), ranked)
        return ranked

    def _rank_later(self, did: str) -> None:
        running = self._ranking.get(did)
        if running is not None and not running.done():
            return
        task = asyncio.ensure_future(self._rank(did))
        self._ranking[did] = task
        task.add_done_callback(_log_failure)  # the caller already has the last ranking

    async def refresh(self) -> None:
        """Re-rank every configured line (and any other line a call asked about)."""
        for did in dict.fromkeys([line.did for line in self.config.lines] + list(self._ranked)):
            await self.rank(did)

    async def settled(self) -> None:
        """Wait for the rankings under way (tests, and a clean stop)."""
        await asyncio.gather(*self._ranking.values(), return_exceptions=True)

    async def search(self, text: str, did: str) -> Answer | None:
        kb = self.config.kb
        found = await self._run(
            lambda s: best_entry(s, text, did, self.clock(), kb.threshold, self.config.tz)
        )
        return found  # type: ignore[return-value]

    async def offered(
        self, answer: Answer, channel: str, asker: Asker, query: str | None = None
    ) -> int | None:
        def write(session: Session) -> int:
            return record_offer(
                session,
                answer.entry_id,
                channel,
                query=query,
                score=answer.score,
                caller_number=asker.number,
                uniqueid=asker.uniqueid,
                at=self.clock(),
            ).id

        return await self._run(write)  # type: ignore[return-value]

    async def heard(self, offer_id: int) -> None:
        await self._run(lambda s: mark_heard(s, offer_id))

    async def answered(self, offer_id: int | None, answer: Answer, asker: Asker) -> str | None:
        def write(session: Session) -> str:
            ticket = answered_ticket(session, answer, asker, self.clock(), self.config.tz)
            if offer_id is not None:
                mark_accepted(session, offer_id, ticket.id)
            return ticket.number

        return await self._run(write)  # type: ignore[return-value]


def _log_failure(task: asyncio.Task[list[Answer]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ranking the knowledge base's top entries failed", exc_info=task.exception())


async def keep_ranked(answers: StoreAnswers, seconds: float = RANK_SECONDS / 2) -> None:
    """The background task that keeps every line's top entries ranked, from the start.

    Run once per FastAGI process beside the other housekeeping, it ranks the lines
    before the first waiting caller asks and then well within `RANK_SECONDS`, so no
    call ever waits for a ranking. A failed pass is logged; the last ranking stays.
    """
    while True:
        try:
            await answers.refresh()
        except Exception:
            log.exception(
                "ranking the knowledge base's top entries failed; next in %.0f s", seconds
            )
        await asyncio.sleep(seconds)
