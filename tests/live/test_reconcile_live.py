"""The reconciler never closes a live call: it asks Asterisk (AMI) which channels exist.

A citizen still on the line long after `reconcile_settle_seconds` (a long
queue wait or conversation) must not get `ended_at = started` and a "hung up
at step ..." ticket while still talking. Real Asterisk; settle time shortened.
"""

from __future__ import annotations

import asyncio

from hotline.app import Hotline
from ivr.reconcile import reconcile_now
from telephony.ami import AMIClient
from tests.support.calls import call_row, calls_ended, citizen_call, ticket_of_call

SETTLE = 2  # seconds: the call below lasts far longer


async def test_a_call_longer_than_the_settle_time_is_not_closed_while_live(
    hotline: Hotline, ami: AMIClient
) -> None:
    caller = "13200132011"
    # the citizen listens without pressing anything: menus repeat, ~20 s on the line
    call = asyncio.create_task(citizen_call(ami, "12345", "w25|h", caller=caller))

    async def live_row() -> str:
        while True:
            rows = [r for r in hotline_calls(hotline, caller) if r.ended_at is None]
            if rows:
                return rows[0].uniqueid
            await asyncio.sleep(0.2)

    uniqueid = await asyncio.wait_for(live_row(), 30)
    await asyncio.sleep(SETTLE + 1)  # older than the settle time, still talking
    report = await reconcile_pass(hotline, ami)
    row = call_row(hotline, uniqueid)
    assert row is not None and row.ended_at is None, "a live call was closed"
    assert ticket_of_call(hotline, uniqueid) is None
    # this test's store holds only this call: the pass made no ticket for anything
    assert not report.tickets_for_calls, report.tickets_for_calls
    assert tickets_in_store(hotline) == 0
    await call
    await calls_ended(hotline, uniqueid)
    ticket = ticket_of_call(hotline, uniqueid)  # the hang-up gives it its ticket
    assert ticket is not None and ticket.caller_number == caller
    assert tickets_in_store(hotline) == 1


def tickets_in_store(hotline: Hotline) -> int:
    from sqlalchemy import func, select

    from db.models import Ticket
    from db.session import unit_of_work

    with unit_of_work(hotline.sessions) as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def hotline_calls(hotline: Hotline, caller: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from db.models import Call
    from db.session import unit_of_work

    with unit_of_work(hotline.sessions) as session:
        return list(session.scalars(select(Call).where(Call.caller_number == caller)))


async def reconcile_pass(hotline: Hotline, ami: AMIClient):  # type: ignore[no-untyped-def]
    return await reconcile_now(hotline.store, ami, SETTLE)
