"""The season's top entries are ranked off the call (hotline/kb_answers.py).

Ranking reads up to 5,000 consultations through the matcher: a caller must never wait
for it, except the very first of a process on a line with no ranking yet. A stale
ranking is still served while a new one is made in the background; `refresh` and
`keep_ranked` rank the lines before anyone asks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.session import unit_of_work
from hotline import kb_answers
from hotline.kb_answers import RANK_SECONDS, StoreAnswers, keep_ranked
from tests.store.test_kb_answers import LINE, NOW, answers, consult
from tests.support.events import eventually


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rankings:
    """Counts the rankings made, and can hold them back until the test lets them go."""

    def __init__(self) -> None:
        self.made = 0
        self.go = threading.Event()
        self.go.set()
        self.fail = False
        self._rank = kb_answers.top_entries

    def __call__(self, *args: object, **kwargs: object) -> object:
        assert self.go.wait(60), "the test never let the ranking go"
        if self.fail:
            raise RuntimeError("the store is away")
        self.made += 1
        return self._rank(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def rankings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rankings]:
    counting = Rankings()
    monkeypatch.setattr(kb_answers, "top_entries", counting)
    yield counting
    counting.go.set()  # never leave a worker thread waiting


def with_ticks(store: sessionmaker[Session], tmp_path: Path) -> tuple[StoreAnswers, Ticks]:
    kb = answers(store, tmp_path)
    ticks = Ticks()
    return StoreAnswers(kb.config, store, clock=lambda: NOW, ticks=ticks), ticks


async def test_a_stale_ranking_is_served_while_a_new_one_is_made_off_the_call(
    store: sessionmaker[Session], tmp_path: Path, rankings: Rankings
) -> None:
    kb, ticks = with_ticks(store, tmp_path)
    with unit_of_work(store) as session:
        consult(session, "公积金怎么取出来", 2)
    first = await kb.top(LINE)  # the process's first call on the line: ranked on it
    assert first[0].key == "fund" and rankings.made == 1

    with unit_of_work(store) as session:
        for days in (1, 3, 5):
            consult(session, "我想查一下养老金发了没有", days)
    assert await kb.top(LINE) == first and rankings.made == 1  # fresh: nothing is ranked

    ticks.now += RANK_SECONDS
    rankings.go.clear()  # the new ranking takes as long as the test wants
    stale = await asyncio.wait_for(kb.top(LINE), timeout=30)
    assert stale == first  # the caller gets the last ranking at once
    assert await kb.top(LINE) == first  # and a second caller does not start another
    rankings.go.set()
    await kb.settled()
    assert rankings.made == 2
    assert [a.key for a in await kb.top(LINE)][:2] == ["pension", "fund"]


async def test_refresh_ranks_the_configured_lines_before_the_first_caller(
    store: sessionmaker[Session], tmp_path: Path, rankings: Rankings
) -> None:
    kb, _ = with_ticks(store, tmp_path)
    await kb.refresh()
    made = rankings.made
    assert made == len(kb.config.lines)
    await kb.top(LINE)
    assert rankings.made == made  # the call took the ranking made beforehand


async def test_a_failed_background_ranking_keeps_the_last_one_and_is_tried_again(
    store: sessionmaker[Session], tmp_path: Path, rankings: Rankings
) -> None:
    kb, ticks = with_ticks(store, tmp_path)
    first = await kb.top(LINE)
    ticks.now += RANK_SECONDS
    rankings.fail = True
    assert await kb.top(LINE) == first
    await kb.settled()
    assert await kb.top(LINE) == first  # still stale: another try starts, the caller is served
    rankings.fail = False
    await kb.settled()
    assert rankings.made == 2
    ticks.now += 1
    await kb.top(LINE)
    assert rankings.made == 2  # the retried ranking is fresh


async def test_keep_ranked_ranks_the_lines_on_a_timer(
    store: sessionmaker[Session], tmp_path: Path, rankings: Rankings
) -> None:
    kb, _ = with_ticks(store, tmp_path)
    lines = len(kb.config.lines)
    task = asyncio.create_task(keep_ranked(kb, seconds=0.05))
    try:
        await eventually(lambda: rankings.made >= 2 * lines, what="two passes of ranking")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
