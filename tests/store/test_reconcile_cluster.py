"""The reconciler in a cluster (issue 22): a dead node's calls are over, an unasked node's are not.

`LiveCalls` is what hotline.live_calls gathers from every node's AMI and the
SIP front. A call on a node that is down gets its ticket on the next pass,
marked as lost with its node (calls.hangup_cause and the ticket's
description); a call on a node that could not be asked but is still active at
the front stays open; a call on a node that answered closes when its channel
is gone, as on one box. Both databases (the `ivr_store` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.models import Call
from db.session import unit_of_work
from db.tickets import ticket_for_call
from ivr.reconcile import NODE_LOST_CAUSE, LiveCalls, reconcile
from ivr.store import CallStart, IvrStore


def start(store: IvrStore, uniqueid: str, caller: str) -> None:
    # a call that began a minute ago: younger than any call can be, so never closed by age
    began = datetime.now(UTC) - timedelta(minutes=1)
    store.apply("call_start", vars(CallStart(uniqueid, caller, "12345", None, started_at=began)))


def test_a_down_nodes_calls_get_node_lost_tickets_and_the_others_stay_open(
    ivr_store: IvrStore,
) -> None:
    start(ivr_store, "ast1-1700000500.1", "13800000501")  # live on ast1
    start(ivr_store, "ast2-1700000500.1", "13800000502")  # ast2 is dead
    start(ivr_store, "ast3-1700000500.1", "13800000503")  # ast3's AMI did not answer
    live = LiveCalls({"ast1-1700000500.1"}, down=frozenset({"ast2"}), unknown=frozenset({"ast3"}))

    report = reconcile(ivr_store, settle_seconds=0, live=live)

    assert len(report.tickets_for_calls) == 1 and report.tickets_for_lost_calls == (
        report.tickets_for_calls
    )
    with unit_of_work(ivr_store.sessions) as session:
        lost = ticket_for_call(session, "ast2-1700000500.1")
        assert lost is not None and lost.caller_number == "13800000502"
        assert "ast2" in (lost.description or "") and "lost" in (lost.description or "")
        call = session.scalars(select(Call).where(Call.uniqueid == "ast2-1700000500.1")).one()
        assert call.hangup_cause == NODE_LOST_CAUSE and call.node == "ast2"
        for open_call in ("ast1-1700000500.1", "ast3-1700000500.1"):
            assert ticket_for_call(session, open_call) is None

    # ast1's channel is gone now: its call ends as on one box, not as lost
    after = reconcile(
        ivr_store, settle_seconds=0, live=LiveCalls(set(), unknown=frozenset({"ast3"}))
    )
    assert len(after.tickets_for_calls) == 1 and after.tickets_for_lost_calls == []
    with unit_of_work(ivr_store.sessions) as session:
        ended = ticket_for_call(session, "ast1-1700000500.1")
        assert ended is not None and "lost" not in (ended.description or "")
        assert ticket_for_call(session, "ast3-1700000500.1") is None


def test_a_node_that_cannot_be_asked_keeps_its_calls_until_the_longest_call(
    ivr_store: IvrStore,
) -> None:
    old = datetime.now(UTC) - timedelta(seconds=ivr_store.config.agi.handler_timeout + 60)
    ivr_store.apply(
        "call_start",
        vars(CallStart("ast3-1700000600.1", "13800000601", "12345", None, started_at=old)),
    )
    report = reconcile(
        ivr_store, settle_seconds=0, live=LiveCalls(set(), unknown=frozenset({"ast3"}))
    )
    assert len(report.tickets_for_calls) == 1 and report.tickets_for_lost_calls == []
