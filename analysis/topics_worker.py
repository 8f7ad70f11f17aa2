"""The month's topics in a worker process, beside the rest of the month's analysis.

Topics (jieba, TF-IDF, NMF) take about half of a month's analysis and need nothing
from the other half (counts, surges, signals, charts, candidates), which waits mostly
on the database. On a machine with two or more cores they can run at once: the parent
reads the month's texts (`topics.month_texts`, plain values), hands them to one
forked worker, does its own half, and collects the topics before it stores the run.

Fork, not spawn: the child starts with numpy, scikit-learn and jieba already imported
(a spawned one would spend longer importing them than the topics take). It is forked
before the parent opens a session for the run and sent only plain values; it never
touches the parent's connections. It reads jieba's dictionary as soon as it starts,
while the parent is still querying. Signals go back to their defaults in the child:
under `hotline serve` the parent's handlers belong to its event loop.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

from threadpoolctl import threadpool_limits

from analysis import text
from analysis.topics import MonthTexts, TopicRow, topics_of
from core.config import TopicsConfig


class TopicsWorker:
    """One forked process that finds a month's topics; use it as a context manager.

    Leaving the context normally waits for the child; leaving it on an exception ends
    the child first, so a failed run does not wait for topics nobody will store.
    """

    def __init__(self, blas_threads: int) -> None:
        self._blas_threads = blas_threads
        self._pool: ProcessPoolExecutor | None = None
        self._child: Future[int] | None = None

    def __enter__(self) -> TopicsWorker:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_child,
            initargs=(self._blas_threads,),
        )
        self._child = self._pool.submit(_ready)  # forks now, and reads jieba's dictionary
        return self

    def topics(
        self, texts: MonthTexts, settings: TopicsConfig, previous: list[dict[str, float]] | None
    ) -> Future[list[TopicRow]]:
        """The topics of these texts, found in the child (`topics.topics_of`)."""
        assert self._pool is not None, "use TopicsWorker as a context manager"
        return self._pool.submit(topics_of, texts, settings, previous)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._pool is not None and self._child is not None
        if error is not None:
            self._end_child()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _end_child(self) -> None:
        """SIGTERM to our own child (its pid is what `_ready` returned)."""
        assert self._child is not None
        try:
            pid = self._child.result()  # waits for its start: about a second at most
        except Exception:  # it never started (the pool broke): shutdown alone ends it
            return
        with contextlib.suppress(ProcessLookupError):  # it ended already
            os.kill(pid, signal.SIGTERM)


def _start_child(blas_threads: int) -> None:
    """In the child: default signals, the parent's BLAS thread limit, jieba's dictionary."""
    signal.set_wakeup_fd(-1)  # the parent's event loop's, if any: not ours to write to
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    threadpool_limits(blas_threads)
    text.load_dictionary()


def _ready() -> int:
    return os.getpid()
