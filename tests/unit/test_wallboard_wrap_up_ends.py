"""A wallboard showing an agent in wrap-up makes its figures again on the next tick even
though no queue_log line came: wrap-up ends by time, and the board must show it end.

Before, the board recomputed only when queue_log moved, so an agent whose wrap-up was the
last thing that happened stayed "话后" on the screen (a CI run of test_wallboard saw it
for 15 s)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dashboard import wallboard


def test_a_board_with_someone_in_wrap_up_is_figured_again_without_a_new_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = iter([1, 0, 0])  # wrap_up on the board: one agent, then the wrap-up is over
    figured: list[int] = []

    def figures(*_args: Any) -> dict[str, Any]:
        wrap_up = next(shown)
        figured.append(wrap_up)
        return {"queues": [{"name": "all", "agents": {"wrap_up": wrap_up, "ready": 1 - wrap_up}}]}

    monkeypatch.setattr(wallboard, "board_figures", figures)
    monkeypatch.setattr(wallboard, "ingest_once", lambda *_args: 0)  # queue_log never moves
    board = wallboard.Wallboard()
    config = SimpleNamespace(cluster=None, queue_log="queue_log")
    board.refresh(None, config, force=True)  # type: ignore[arg-type]
    board.refresh(None, config, force=False)  # type: ignore[arg-type]  # a tick, no new line
    assert figured == [1, 0]
    assert board.payload is not None and board.payload["queues"][0]["agents"]["wrap_up"] == 0
    board.refresh(None, config, force=False)  # type: ignore[arg-type]  # nobody in wrap-up
    assert figured == [1, 0]  # no new line, nothing on the clock: not figured again
