"""Report tables for leadership: three rates, ranking, snail seat, overdue tickets.

A report is a title, Chinese column headers and rows of plain values; the same
report prints as a rich table in the terminal, or is written as CSV (UTF-8 with
a BOM, so Excel shows the Chinese headers) or as an XLSX workbook with real
percentages. A rate with no valid callbacks behind it is "无数据" (no data),
never 0%.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from core.vocabulary import label as vocabulary_label
from db.models import Ticket
from reports.metrics import Counts, RateRules, Rates, UnitFigures
from reports.ranking import Ranked, SnailSeat

NO_DATA = "无数据"
TOO_FEW = "样本不足"  # has valid callbacks, fewer than metrics.min_valid_callbacks: not ranked
LEVEL_NAMES = {
    1: "一级(自治区)",
    2: "二级(市)",
    3: "三级(旗区)",
    4: "四级(苏木乡镇/街道)",
    5: "五级(嘎查村/社区)",
}
LEVEL_OPTIONS = {
    "region": 1,
    "city": 2,
    "district": 3,
    "township": 4,
    "street": 4,
    "village": 5,
    "community": 5,
}


@dataclass
class Report:
    """A titled table; `percent` names the columns holding rates (0..1 or None)."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    percent: set[str] = field(default_factory=set)

    def cell(self, header: str, value: Any) -> str:
        """A value as text for the terminal and CSV."""
        if header in self.percent:
            return NO_DATA if value is None else f"{float(value):.2%}"
        if value is None:
            return ""
        return str(value)


RATE_HEADERS = ["有效回访", "响应率", "解决率", "满意率", "综合成绩"]
PERCENT_HEADERS = {"响应率", "解决率", "满意率", "办结率", "综合成绩"}


def _rate(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _rate_cells(counts: Counts, rates: Rates) -> list[Any]:
    return [
        counts.valid,
        _rate(rates.response),
        _rate(rates.resolution),
        _rate(rates.satisfaction),
        _rate(rates.composite),
    ]


def three_rates(
    period: str,
    figures: list[UnitFigures],
    total: Counts,
    groups: dict[str, Counts],
    rules: RateRules,
) -> Report:
    """Per unit: valid callbacks, the three rates, completion, improper returns, composite."""
    report = Report(
        f"三率报表 {period}",
        [
            "单位编码",
            "单位",
            "层级",
            "同类组",
            "有效回访",
            "响应率",
            "解决率",
            "满意率",
            "受理量",
            "办结量",
            "办结率",
            "不当退单",
            "综合成绩",
        ],
        percent=PERCENT_HEADERS,
    )

    def row(code: str, name: str, level: str, group: str, c: Counts, r: Rates) -> list[Any]:
        valid, response, resolution, satisfaction, composite = _rate_cells(c, r)
        return [
            code,
            name,
            level,
            group,
            valid,
            response,
            resolution,
            satisfaction,
            c.accepted,
            c.closed,
            _rate(r.completion),
            c.improper_returns,
            composite,
        ]

    report.rows.append(row("", "全部", "", "", total, Rates.of(total, rules)))
    for group, counts in groups.items():
        report.rows.append(
            row("", f"同类组合计 {group}", "", group, counts, Rates.of(counts, rules))
        )
    for unit in figures:
        report.rows.append(
            row(
                unit.code,
                unit.name,
                LEVEL_NAMES.get(unit.level, str(unit.level)),
                unit.peer_group,
                unit.counts,
                unit.rates,
            )
        )
    return report


def unranked_label(ranked: Ranked) -> str:
    """Why a unit has no rank: no valid callbacks at all, or too few of them."""
    return TOO_FEW if ranked.unit.counts.valid else NO_DATA


def ranking(period: str, groups: dict[str, list[Ranked]]) -> Report:
    """Each peer group's units by composite score; no-data units last without a rank."""
    report = Report(
        f"排名 {period}",
        ["同类组", "排名", "位次", "单位编码", "单位", *RATE_HEADERS],
        percent=PERCENT_HEADERS,
    )
    for group, members in groups.items():
        for ranked in members:
            unit = ranked.unit
            report.rows.append(
                [
                    group,
                    unranked_label(ranked) if ranked.rank is None else ranked.rank,
                    ranked.position or "",
                    unit.code,
                    unit.name,
                    *_rate_cells(unit.counts, unit.rates),
                ]
            )
    return report


def snail_seat(period: str, seats: list[SnailSeat]) -> Report:
    """Units in their group's bottom two for the whole run of months."""
    report = Report(
        f"蜗牛席 {period}",
        ["同类组", "单位编码", "单位", "各月排名", "本月有效回访", "本月综合成绩"],
        percent={"本月综合成绩"},
    )
    for seat in seats:
        report.rows.append(
            [
                seat.unit.peer_group,
                seat.unit.code,
                seat.unit.name,
                ", ".join(f"{rank}/{size}" for rank, size in seat.ranks),
                seat.unit.counts.valid,
                _rate(seat.unit.rates.composite),
            ]
        )
    return report


def time_left(hours: float) -> str:
    """Hours to the deadline as a person says it: 超期 905 天 14 小时, 剩余 20 小时."""
    whole = int(abs(hours))
    if hours < 0:
        days, rest = divmod(whole, 24)
        if not days:
            return f"超期 {rest} 小时" if rest else "超期 不足 1 小时"
        return f"超期 {days} 天 {rest} 小时"
    return f"剩余 {whole} 小时" if whole else "剩余 不足 1 小时"


DEADLINE_LABELS = {"overdue": "超期", "escalate": "督办", "warn": "预警"}


def deadlines(now: datetime, lists: dict[str, list[Ticket]], tz: Any) -> Report:
    """Open tickets that are overdue (超期), to escalate (督办) or to warn (预警).

    `时限` says the time late or left in days and hours; `剩余小时` keeps it as a
    number (negative: late) for sorting in a spreadsheet.
    """
    report = Report(
        f"时限预警 {now.astimezone(tz):%Y-%m-%d %H:%M}",
        [
            "状态",
            "工单号",
            "单位",
            "受理时间",
            "办结时限",
            "时限",
            "剩余小时",
            "紧急程度",
            "类别",
        ],
    )
    for key, tickets in lists.items():
        for ticket in tickets:
            assert ticket.due_at is not None
            hours = (ticket.due_at - now).total_seconds() / 3600
            report.rows.append(
                [
                    DEADLINE_LABELS[key],
                    ticket.number,
                    ticket.department.name if ticket.department else "",
                    f"{ticket.accepted_at.astimezone(tz):%Y-%m-%d %H:%M}",
                    f"{ticket.due_at.astimezone(tz):%Y-%m-%d %H:%M}",
                    time_left(hours),
                    round(hours, 1),
                    vocabulary_label(ticket.urgency)[0],
                    ticket.category or "",
                ]
            )
    return report


def trend(unit: str, weeks: list[str], series: list[tuple[Counts, Rates]]) -> Report:
    """Weekly values, oldest first, for a chart or a glance."""
    report = Report(f"周趋势 {unit}", ["周", *RATE_HEADERS], percent=PERCENT_HEADERS)
    for label, (counts, rates) in zip(weeks, series, strict=True):
        report.rows.append([label, *_rate_cells(counts, rates)])
    return report


# -- writers -----------------------------------------------------------------------
def print_table(report: Report, console: Any) -> None:
    """A rich table; piped output gets room for every column instead of 80 characters."""
    table = Table(*report.headers, title=Text(report.title))
    for row in report.rows:
        # unit names come from imports: Text, so "[/x]" is printed, never read as markup
        table.add_row(*(Text(report.cell(h, v)) for h, v in zip(report.headers, row, strict=True)))
    if not console.is_terminal:
        console = Console(file=console.file, width=max(console.width, 240), soft_wrap=True)
    console.print(table)


# A spreadsheet program reads a CSV cell starting with one of these as a formula (OWASP:
# CSV injection); unit names, codes, peer groups and categories come from imports.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Fraction) and not isinstance(value, bool)


def safe_text(text: str) -> str:
    """Text as a spreadsheet shows it, never a formula: a leading single quote when needed."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(report: Report, header: str, value: Any) -> str:
    """A value as a CSV cell: numbers (and our formatted rates) as they are, text made safe."""
    cell = report.cell(header, value)
    if is_number(value):
        return cell
    return safe_text(cell)


def write_csv(report: Report, path: Path | None) -> None:
    """CSV with a BOM (Excel opens UTF-8 Chinese headers correctly only with it).

    Every text cell goes through `safe_text`, so a name like `=HYPERLINK(...)` from
    an import is shown, not evaluated; numbers stay numbers.
    """
    handle = path.open("w", newline="", encoding="utf-8-sig") if path else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow([safe_text(h) for h in report.headers])
        for row in report.rows:
            cells = zip(report.headers, row, strict=True)
            writer.writerow(csv_cell(report, h, v) for h, v in cells)
    finally:
        if path:
            handle.close()


def _xlsx_value(value: Any, illegal: Any) -> Any:
    if is_number(value):
        return float(value) if isinstance(value, Fraction) else value
    return illegal.sub("", str(value))


def write_xlsx(report: Report, path: Path) -> None:
    """A workbook with the title, bold headers, percentages as numbers formatted 0.00%.

    Numbers are number cells; everything else is a string cell (openpyxl would
    store a string starting with `=` as a live formula), with the characters
    XML cannot hold taken out.
    """
    from openpyxl import Workbook  # heavy optional dependency: only an XLSX export loads it
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    def put(values: list[Any]) -> list[Any]:
        sheet.append([_xlsx_value(v, ILLEGAL_CHARACTERS_RE) for v in values])
        cells = list(sheet[sheet.max_row])
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula
        return cells

    book = Workbook()
    sheet = book.active
    sheet.title = "报表"
    put([report.title])
    sheet["A1"].font = Font(bold=True, size=14)
    for cell in put(report.headers):
        cell.font = Font(bold=True)
    for row in report.rows:
        values = [
            (NO_DATA if value is None else value)
            if header in report.percent
            else ("" if value is None else value)
            for header, value in zip(report.headers, row, strict=True)
        ]
        for header, cell in zip(report.headers, put(values), strict=True):
            if header in report.percent and isinstance(cell.value, float):
                cell.number_format = "0.00%"
    for index, header in enumerate(report.headers, start=1):
        sheet.column_dimensions[sheet.cell(2, index).column_letter].width = max(
            10, len(header) * 2 + 4
        )
    sheet.freeze_panes = "A3"
    book.save(path)
