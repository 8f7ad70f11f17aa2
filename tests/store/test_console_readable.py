"""Readable to the people it serves (issue 19, item 9): time late in days and hours, every
enum in its Chinese label (English beside it), long deadline lists paged.

A supervisor on the demo city read "-21738.4 剩余小时" where "超期 905 天" was
meant, `daily_life` where 一般 was, and every overdue ticket since 2024 on one page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.vocabulary import EventKind, RequestType, TicketStatus, Urgency
from dashboard.app import create_app
from db.departments import department_by_code
from db.session import unit_of_work
from db.tickets import add_event, create_ticket
from tests.support.console_city import ConsoleCity, login
from tests.support.console_site import console_site

LATE = 120  # overdue tickets of S1, since January 2024
DUE = datetime(2024, 1, 5, 1, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, ConsoleCity, list[str]]]:
    config, _, city, sessions = console_site(tmp_path)
    late: list[str] = []
    with unit_of_work(sessions) as session:
        for code, count in (("S1", LATE), ("S2", 3)):
            unit = department_by_code(session, code)
            for i in range(count):
                accepted = datetime(2024, 1, 2, 1, 0, tzinfo=UTC) + timedelta(minutes=i)
                ticket = create_ticket(
                    session,
                    caller_number="13800000001",
                    local_day=accepted.date(),
                    accepted_at=accepted,
                    due_at=DUE + timedelta(minutes=i),
                    request_type=RequestType.COMPLAINT,
                    urgency=Urgency.DAILY_LIFE,
                    category="市容环境",
                    source="test",
                )
                ticket.status, ticket.department_id = TicketStatus.DISPATCHED, unit.id  # type: ignore[union-attr]
                add_event(session, ticket, EventKind.DISPATCHED, actor="test", at=accepted)
                if code == "S1":
                    late.append(ticket.number)
    sessions.kw["bind"].dispose()
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, city, late


def _table(html: str, table_id: str) -> list[list[str]]:
    """The rows of table#table_id as lists of cell texts (tags stripped)."""
    found = re.search(rf'<table[^>]*id="{table_id}"[^>]*>(.*?)</table>', html, re.S)
    assert found, f"no table #{table_id}"
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells:
            rows.append([" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in cells])
    return rows


def test_time_late_reads_as_days_and_hours_and_urgency_as_its_chinese_label(site) -> None:  # type: ignore[no-untyped-def]
    client, _, late = site
    assert login(client, "boss").status_code == 303
    html = client.get("/rates").text
    assert "剩余小时" not in html and not re.search(r">\s*-\d+\.\d\s*<", html)
    rows = _table(html, "deadlines-overdue")
    assert rows
    days = (datetime.now(UTC) - DUE).days
    for row in rows:
        text = " ".join(row)
        found = re.search(r"超期 (\d+) 天 (\d+) 小时", text)
        assert found, row
        assert abs(int(found.group(1)) - days) <= 1 and int(found.group(2)) < 24
        assert "一般" in text and "daily_life" not in text
    ticket = client.get(f"/tickets/{late[0]}").text
    assert "一般" in ticket and "投诉" in ticket and "已派单" in ticket
    # the stored word never stands alone in a cell (English only beside the Chinese)
    assert not re.search(r"<td[^>]*>\s*(daily_life|complaint|dispatched)\s*<", ticket)
    assert '一般 <span class="en">daily life</span>' in ticket


def test_deadline_lists_are_paged_and_the_pages_walk_every_ticket_once(site) -> None:  # type: ignore[no-untyped-def]
    client, _, late = site
    assert login(client, "s1").status_code == 303
    html = client.get("/rates").text
    preview = _table(html, "deadlines-overdue")
    assert 0 < len(preview) <= 20, len(preview)  # not all 120 on the rates page
    assert f"{LATE}" in html and 'href="/deadlines?list=overdue"' in html
    seen: list[str] = []
    path = "/deadlines?list=overdue"
    pages = 0
    while path:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        rows = _table(answer.text, "deadlines")
        assert len(rows) <= 50
        seen += [re.search(r"\d{11,}", " ".join(r)).group(0) for r in rows]  # type: ignore[union-attr]
        following = re.search(r'<a[^>]*id="next"[^>]*href="([^"]+)"', answer.text)
        path = following.group(1).replace("&amp;", "&") if following else ""
        pages += 1
        assert pages < 10
    assert pages == 3 and sorted(seen) == sorted(late) and len(set(seen)) == LATE
    # staff of S2 see their own three only
    other = TestClient(client.app, base_url="http://127.0.0.1")
    assert login(other, "s2").status_code == 303
    assert len(_table(other.get("/deadlines?list=overdue").text, "deadlines")) == 3
    assert other.get("/deadlines?list=nonsense").status_code in (400, 404, 422)
    assert other.get("/deadlines?list=overdue&page=0").status_code in (400, 422)
