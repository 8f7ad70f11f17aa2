"""The month's topics found in a forked worker process: the same topics, and no orphan.

The labelled sample (tests/data/labelled_requests.yaml) is one month of four
categories, sent as plain values as `hotline.monthly` sends a month read from the store.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from analysis import topics
from analysis.text import Vocabulary
from analysis.topics import MonthTexts, topics_of
from analysis.topics_worker import TopicsWorker
from core.config import TopicsConfig
from tests.support.labelled_sample import PLACES, sample

SETTINGS = TopicsConfig()


def _month() -> MonthTexts:
    by_category: dict[str, tuple[list[int], list[str]]] = {}
    number = 0
    for category, subtopics in sample().items():
        ids: list[int] = []
        texts: list[str] = []
        for phrasings in subtopics.values():
            for phrasing in phrasings:
                number += 1
                ids.append(number)
                texts.append(phrasing)
        by_category[category] = (ids, texts)
    return MonthTexts("2025-10", Vocabulary(PLACES, tuple(sample())), by_category)


def test_the_worker_finds_the_topics_found_in_process() -> None:
    month = _month()
    previous = [{"暖气 不热": 0.5, "温度": 0.3}]
    with TopicsWorker(1) as worker:
        found = worker.topics(month, SETTINGS, previous).result(timeout=300)
    assert found == topics_of(month, SETTINGS, previous)
    assert {row.category for row in found} == set(sample())


def test_the_worker_also_runs_from_a_thread_as_under_serve() -> None:
    """`hotline serve` analyses on its batch thread, beside the event loop's own."""
    month = _month()
    others_running = threading.Event()
    stop = threading.Event()

    def busy() -> None:  # another thread of the process, as serve has many
        others_running.set()
        stop.wait(300)

    def on_batch_thread() -> list[topics.TopicRow]:
        with TopicsWorker(1) as worker:
            return worker.topics(month, SETTINGS, None).result(timeout=300)

    with ThreadPoolExecutor(2) as threads:
        threads.submit(busy)
        others_running.wait(60)
        try:
            found = threads.submit(on_batch_thread).result(timeout=600)
        finally:
            stop.set()
    assert found == topics_of(month, SETTINGS, None)


def test_an_error_in_the_child_comes_back_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> list[object]:
        raise RuntimeError("NMF fell over")

    monkeypatch.setattr(topics, "find_topics", broken)  # the child is forked after this
    with TopicsWorker(1) as worker, pytest.raises(RuntimeError, match="NMF fell over"):
        worker.topics(_month(), SETTINGS, None).result(timeout=300)


def test_a_child_that_dies_breaks_the_topics_not_the_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def dies(*_: object) -> None:
        os._exit(3)

    monkeypatch.setattr(topics, "find_topics", dies)
    with TopicsWorker(1) as worker, pytest.raises(BrokenProcessPool):
        worker.topics(_month(), SETTINGS, None).result(timeout=300)
    assert not multiprocessing.active_children()


def test_leaving_on_an_error_ends_the_child_instead_of_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(*_: Sequence[object]) -> list[object]:
        time.sleep(600)  # topics nobody will store
        return []

    monkeypatch.setattr(topics, "find_topics", slow)
    started = time.monotonic()
    with pytest.raises(ValueError, match="surges fell over"), TopicsWorker(1) as worker:
        worker.topics(_month(), SETTINGS, None)
        raise ValueError("surges fell over")
    assert not multiprocessing.active_children()
    assert time.monotonic() - started < 300  # not the child's ten minutes
