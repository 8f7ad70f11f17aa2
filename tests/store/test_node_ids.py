"""Two Asterisk nodes may count to the same number: their calls stay two calls (issue 22).

With a systemname each node's Uniqueids read `ast1-1700000000.12`, `ast2-1700000000.12`;
the store keeps them apart (two calls, two tickets), stores each call's node (and a
SIP call's Call-ID), and each robot attempt's node.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import link_survey_call
from callback_robot.attempts import create_attempt
from callback_robot.claim import claim_due
from callback_robot.eligibility import DueRules
from core.vocabulary import TicketStatus
from db.models import Call, CallbackAttempt
from db.session import unit_of_work
from db.tickets import create_ticket, ticket_for_call
from ivr.reconcile import reconcile
from ivr.store import IvrStore
from tests.support.recordings import day_dir, write_wav

STARTED = datetime(2026, 11, 25, 1, tzinfo=UTC)
NUMBER = "1700000000.12"  # both nodes' counters reached the same call


def test_two_nodes_same_number_are_two_calls_with_two_tickets(ivr_store: IvrStore) -> None:
    for node, caller, call_id in (
        ("ast1", "13800000001", "a84b4c76e66710@pc33"),
        ("ast2", "13800000002", ""),
    ):
        ivr_store.apply(
            "call_start",
            {
                "uniqueid": f"{node}-{NUMBER}",
                "caller": caller,
                "did": "12345",
                "recording": None,
                "linkedid": f"{node}-{NUMBER}",
                "started_at": STARTED,
                "sip_call_id": call_id or None,
            },
        )
        ivr_store.apply(
            "call_end",
            {
                "uniqueid": f"{node}-{NUMBER}",
                "caller": caller,
                "did": "12345",
                "recording": None,
                "request_recordings": [],
                "hangup_cause": "16",
                "last_step": None,
                "ended_at": STARTED + timedelta(minutes=1),
            },
        )
    with unit_of_work(ivr_store.sessions) as session:
        calls = {
            c.uniqueid: c
            for c in session.scalars(select(Call).where(Call.uniqueid.endswith(NUMBER)))
        }
        assert set(calls) == {f"ast1-{NUMBER}", f"ast2-{NUMBER}"}
        assert (calls[f"ast1-{NUMBER}"].node, calls[f"ast1-{NUMBER}"].sip_call_id) == (
            "ast1",
            "a84b4c76e66710@pc33",
        )
        assert (calls[f"ast2-{NUMBER}"].node, calls[f"ast2-{NUMBER}"].sip_call_id) == ("ast2", None)
        first, second = (ticket_for_call(session, f"{n}-{NUMBER}") for n in ("ast1", "ast2"))
        assert first is not None and second is not None and first.id != second.id
        assert (first.caller_number, second.caller_number) == ("13800000001", "13800000002")


def test_a_one_box_call_has_no_node(ivr_store: IvrStore) -> None:
    ivr_store.apply(
        "call_start",
        {
            "uniqueid": NUMBER,
            "caller": "1",
            "did": "12345",
            "recording": None,
            "started_at": STARTED,
        },
    )
    with unit_of_work(ivr_store.sessions) as session:
        call = session.scalars(select(Call).where(Call.uniqueid == NUMBER)).one()
        assert call.node is None and call.sip_call_id is None


def test_orphan_recordings_of_two_nodes_become_two_tickets(ivr_store: IvrStore) -> None:
    folder = day_dir(ivr_store.config)
    for node, caller in (("ast1", "13900000001"), ("ast2", "13900000002")):
        write_wav(folder / f"{node}-{NUMBER}_12345004_{caller}.wav", 2)
    report = reconcile(ivr_store, settle_seconds=0)
    assert len(report.tickets_for_orphan_recordings) == 2
    with unit_of_work(ivr_store.sessions) as session:
        for node, caller in (("ast1", "13900000001"), ("ast2", "13900000002")):
            ticket = ticket_for_call(session, f"{node}-{NUMBER}")
            assert ticket is not None and ticket.caller_number == caller
            assert [c.node for c in ticket.calls] == [node]


def test_robot_attempts_name_the_node_that_dials_or_answers(store: sessionmaker[Session]) -> None:
    now = datetime(2026, 11, 25, 3, tzinfo=UTC)
    with unit_of_work(store) as session:
        ids = []
        for n in range(2):
            ticket = create_ticket(
                session,
                caller_number=f"1380000900{n}",
                local_day=date(2026, 11, 20),
                accepted_at=now - timedelta(days=5),
            )
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = now - timedelta(days=3)
            session.flush()
            ids.append(ticket.id)
    rules = DueRules(
        now=now, today_start=now - timedelta(hours=11), closed_before=now - timedelta(hours=2)
    )
    with unit_of_work(store) as session:
        claimed = claim_due(
            session, rules, max_channels=1, calls_per_minute=10, robot_id="r", node="ast2"
        )
        assert len(claimed) == 1
        assert session.get_one(CallbackAttempt, claimed[0][0]).node == "ast2"
    with unit_of_work(store) as session:
        other = next(t for t in ids if t != claimed[0][1])
        attempt = create_attempt(session, other, now, "r")  # a robot without a node name
        link_survey_call(session, attempt.id, f"ast3-{NUMBER}", "13800009001", None, None)
        assert attempt.node == "ast3"  # learnt from the survey channel's Uniqueid
