"""The recordings search in SQL, on SQLite and PostgreSQL: every filter and keyset paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.vocabulary import AttemptOutcome, AttemptState, CallDirection
from dashboard.call_search import CallQuery, search_calls
from db.models import Call, CallbackAttempt
from db.session import unit_of_work
from db.tickets import create_ticket
from tests.support.metrics_city import build_city

T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


def test_every_filter_and_keyset_paging(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_city(session)
        ticket = create_ticket(
            session, caller_number="13812345678", local_day=T0.date(), accepted_at=T0
        )
        ticket.department_id = units["V1"].id
        other = create_ticket(
            session, caller_number="13900000000", local_day=T0.date(), accepted_at=T0
        )
        other.department_id = units["S2"].id
        rows = [
            # (uniqueid, direction, caller, did, minutes after T0, seconds long, step, ticket)
            ("1.1", CallDirection.INBOUND, "13812345678", "12345", 0, 95, "readback", ticket),
            ("1.2", CallDirection.INBOUND, "13812349999", "12345001", 10, 20, "menu", None),
            ("1.3", CallDirection.OUTBOUND, "13900000000", None, 60 * 26, 40, None, other),
            ("1.4", CallDirection.INBOUND, "+8613812345678", "12345", 5, 300, "queue", None),
        ]
        ids = {}
        for uniqueid, direction, caller, did, minutes, seconds, step, owner in rows:
            start = T0 + timedelta(minutes=minutes)
            call = Call(
                uniqueid=uniqueid,
                direction=direction,
                caller_number=caller,
                did=did,
                started_at=start,
                ended_at=start + timedelta(seconds=seconds),
                last_step=step,
                ticket_id=owner.id if owner else None,
            )
            session.add(call)
            session.flush()
            ids[uniqueid] = call.id
        session.add(
            CallbackAttempt(
                ticket_id=other.id,
                attempt_no=1,
                planned_at=T0,
                state=AttemptState.DONE,
                outcome=AttemptOutcome.PARTIAL,
                call_id=ids["1.3"],
            )
        )
        session.flush()

        def found(**given) -> list[str]:  # type: ignore[no-untyped-def]
            return [h.uniqueid for h in search_calls(session, CallQuery(**given))]

        assert found() == ["1.3", "1.2", "1.4", "1.1"]  # newest first
        assert found(caller="138123") == ["1.2", "1.1"]  # a prefix
        assert found(caller="13812345678") == ["1.1"]
        assert found(caller="+86") == ["1.4"]
        assert found(ticket_number=ticket.number) == ["1.1"]
        assert found(did="12345001") == ["1.2"]
        assert found(direction=CallDirection.OUTBOUND) == ["1.3"]
        assert found(min_seconds=60) == ["1.4", "1.1"]
        assert found(max_seconds=30) == ["1.2"]
        assert found(min_seconds=30, max_seconds=100) == ["1.3", "1.1"]
        assert found(last_step="menu") == ["1.2"]
        assert found(outcome=AttemptOutcome.PARTIAL) == ["1.3"]
        assert found(start=T0 + timedelta(minutes=5), end=T0 + timedelta(hours=1)) == ["1.2", "1.4"]
        assert found(scope_root=units["S1"].id) == ["1.1"]  # V1 is below S1
        assert found(scope_root=units["D1"].id) == ["1.3", "1.1"]  # S2 and V1 are below D1
        assert found(scope_root=units["D2"].id) == []
        hits = search_calls(session, CallQuery(limit=2))
        assert [h.uniqueid for h in hits] == ["1.3", "1.2"]
        assert hits[0].outcome == "partial" and hits[1].outcome is None
        last = hits[-1]
        assert found(after=(last.started_at, last.id), limit=2) == ["1.4", "1.1"]
        assert found(after=(T0, ids["1.1"])) == []
