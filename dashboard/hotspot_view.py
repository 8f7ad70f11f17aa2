"""What the hotspots page shows of one stored run, as rows its template reads.

Each part has its own small builder (grid, flags, topics, signals); ticket text
is filled in only for the roles in `TEXT_ROLES`, and never for a 保密 ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from dashboard.auth import Viewer
from dashboard.hotspot_chart import band_chart
from dashboard.hotspot_store import (
    TicketFacts,
    Unit,
    flags_of,
    signals_of,
    tickets_by_id,
    topics_of,
    units_by_id,
)
from dashboard.hotspot_summary import Grid, RunSummary
from db.models import AnalysisRun, HotspotFlag, Topic, UnitSignal

Facts = dict[int, TicketFacts]
# who reads the typical tickets' and the evidence's text on this page: supervisors, who
# read every ticket anyway; admins (accounts and audit) get the ticket numbers only
TEXT_ROLES = ("supervisor",)
SECRET = "（保密）"
SNIPPET = 60  # characters of a ticket's description shown beside its link
EVIDENCE_SHOWN = 20  # ticket links per signal; the rest are counted
TERMS_SHOWN = 8
SIGNAL_KINDS = {
    "contradicted_resolved": (
        "谎报瞒报：办结称已解决，回访称未解决",
        "closed as resolved, callback says not",
    ),
    "repeat_after_close": ("办结后同类重复来电", "repeat calls after a close"),
    "bounced": ("多次退单或改派", "returned or re-dispatched twice or more"),
    "ping_pong": ("来回推诿 A→B→A", "ping-pong between units"),
    "pair_bounce": ("两单位互相推诿同类工单", "a pair of units bouncing one category"),
}
STATES = {"watch": ("关注", "watch"), "alert": ("预警", "alert")}
REVIEW_NAMES = {"confirmed": ("已确认", "confirmed"), "dismissed": ("已排除", "dismissed")}
LEVEL_NAMES = {"district": ("旗区", "district"), "township": ("苏木乡镇/街道", "township")}


@dataclass(frozen=True)
class TicketLink:
    number: str
    text: str | None  # None: this viewer's role reads no ticket text here


@dataclass(frozen=True)
class FlagRow:
    id: int
    category: str
    area: str
    area_ids: tuple[int, ...]  # the area and its parent: the grid cell it marks
    level: str
    period: str
    period_start: date
    method: str
    observed: int
    expected: float
    upper: float
    p_value: float
    q_value: float | None
    state: str
    review: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    chart: str  # SVG, "" when the run wrote no series for it


@dataclass
class GridCellView:
    observed: float
    expected: float | None
    flags: list[FlagRow] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.observed / self.expected if self.expected else None

    @property
    def tone(self) -> str:
        """The cell's colour class, by observed ÷ expected."""
        ratio = self.ratio
        if ratio is None:
            return "r-none"
        for limit, name in ((0.8, "r-low"), (1.25, "r-even"), (1.5, "r-up"), (2.0, "r-high")):
            if ratio < limit:
                return name
        return "r-hot"


@dataclass(frozen=True)
class GridRow:
    category: str
    cells: list[GridCellView | None]


@dataclass(frozen=True)
class TopicRow:
    label: str
    terms: list[str]
    size: int
    is_new: bool
    tickets: list[TicketLink]


@dataclass(frozen=True)
class SignalRow:
    id: int
    unit: str
    kind: str
    kind_name: tuple[str, str]
    other: str
    category: str
    observed: int
    total: int
    peer_rate: float | None
    p_value: float | None
    q_value: float | None
    flagged: bool
    hours_lost: float | None
    tickets: list[TicketLink]
    more: int  # evidence tickets beyond those linked

    @property
    def share(self) -> float | None:
        return self.observed / self.total if self.total else None


def _ids(text: str | None) -> list[int]:
    """A JSON list of ticket ids as ints (anything else in it is skipped)."""
    try:
        values = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    return [v for v in values if isinstance(v, int)] if isinstance(values, list) else []


def _terms(text: str) -> list[str]:
    try:
        values = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    terms = [v[0] if isinstance(v, list) and v else v for v in values]
    return [str(t) for t in terms[:TERMS_SHOWN]]


def _link(facts_by_id: Facts, ticket_id: int, reads_text: bool) -> TicketLink | None:
    facts = facts_by_id.get(ticket_id)
    if facts is None:
        return None
    if not reads_text:
        return TicketLink(facts.number, None)
    if facts.confidential:
        return TicketLink(facts.number, SECRET)
    text = facts.description
    return TicketLink(facts.number, text if len(text) <= SNIPPET else text[:SNIPPET] + "…")


def flag_rows(
    flags: list[HotspotFlag], units: dict[int, Unit], summary: RunSummary
) -> list[FlagRow]:
    """The flags with their area's name and their series' chart."""
    rows = []
    for flag in flags:
        area = units.get(flag.area_id) if flag.area_id is not None else None
        series = summary.series.get(str(flag.id))
        chart = (
            band_chart(series.weeks, series.observed, series.expected, series.upper)
            if series and series.weeks
            else ""
        )
        rows.append(
            FlagRow(
                id=flag.id,
                category=flag.category,
                area=area.name if area else "未知区域 unknown",
                area_ids=tuple(i for i in (flag.area_id, area and area.parent_id) if i),
                level=flag.level,
                period=flag.period,
                period_start=flag.period_start,
                method=flag.method,
                observed=flag.observed,
                expected=flag.expected,
                upper=flag.upper,
                p_value=flag.p_value,
                q_value=flag.q_value,
                state=flag.state,
                review=flag.review,
                reviewed_by=flag.reviewed_by,
                reviewed_at=flag.reviewed_at,
                chart=chart,
            )
        )
    return rows


def grid_rows(grid: Grid, categories: list[str], flags: list[FlagRow]) -> list[GridRow]:
    """Category × district: the summary's cells, each with the flags that fall in it.

    Rows follow the month's category lines, then any other category of the grid."""
    cells = {(c.category, c.area_id): c for c in grid.cells}
    order = [c for c in categories if any(k[0] == c for k in cells)]
    order += sorted({k[0] for k in cells} - set(order))
    rows = []
    for category in order:
        row: list[GridCellView | None] = []
        for district_id, _ in grid.districts:
            cell = cells.get((category, district_id))
            if cell is None:
                row.append(None)
                continue
            marked = [f for f in flags if f.category == category and district_id in f.area_ids]
            row.append(GridCellView(cell.observed, cell.expected, marked))
        rows.append(GridRow(category, row))
    return rows


def topic_groups(
    topics: list[Topic], facts_by_id: Facts, reads_text: bool
) -> list[tuple[str, list[TopicRow]]]:
    """The topics per category, the largest first, with their typical tickets."""
    groups: dict[str, list[TopicRow]] = {}
    for topic in topics:
        links = [_link(facts_by_id, i, reads_text) for i in _ids(topic.typical_ticket_ids)]
        groups.setdefault(topic.category, []).append(
            TopicRow(
                topic.label,
                _terms(topic.terms),
                topic.size,
                topic.is_new,
                [link for link in links if link],
            )
        )
    return list(groups.items())


def signal_rows(
    signals: list[UnitSignal],
    units: dict[int, Unit],
    facts_by_id: Facts,
    reads_text: bool,
) -> list[SignalRow]:
    """The unit signals, flagged first, each with its evidence tickets linked."""
    rows = []
    for signal in signals:
        ids = _ids(signal.ticket_ids)
        links = [_link(facts_by_id, i, reads_text) for i in ids[:EVIDENCE_SHOWN]]
        unit = units.get(signal.department_id)
        other = units.get(signal.other_department_id) if signal.other_department_id else None
        rows.append(
            SignalRow(
                id=signal.id,
                unit=unit.name if unit else str(signal.department_id),
                kind=signal.kind,
                kind_name=SIGNAL_KINDS.get(signal.kind, (signal.kind, signal.kind)),
                other=other.name if other else "",
                category=signal.category or "",
                observed=signal.observed,
                total=signal.total,
                peer_rate=signal.peer_rate,
                p_value=signal.p_value,
                q_value=signal.q_value,
                flagged=signal.flagged,
                hours_lost=signal.hours_lost,
                tickets=[link for link in links if link],
                more=max(len(ids) - EVIDENCE_SHOWN, 0),
            )
        )
    return rows


@dataclass(frozen=True)
class RunView:
    flags: list[FlagRow]
    grid: list[GridRow]
    topics: list[tuple[str, list[TopicRow]]]
    signals: list[SignalRow]
    reads_text: bool


def run_view(session: Session, run: AnalysisRun, summary: RunSummary, viewer: Viewer) -> RunView:
    """The page's parts for one run, as the viewer may see them."""
    flags = flags_of(session, run.id)
    topics = topics_of(session, run.id)
    signals = signals_of(session, run.id)
    units = units_by_id(
        session,
        [f.area_id for f in flags]
        + [s.department_id for s in signals]
        + [s.other_department_id for s in signals],
    )
    ticket_ids = [i for t in topics for i in _ids(t.typical_ticket_ids)]
    ticket_ids += [i for s in signals for i in _ids(s.ticket_ids)[:EVIDENCE_SHOWN]]
    facts = tickets_by_id(session, ticket_ids)
    reads_text = viewer.role in TEXT_ROLES
    flag_list = flag_rows(flags, units, summary)
    return RunView(
        flags=flag_list,
        grid=grid_rows(summary.grid, [c.category for c in summary.categories], flag_list),
        topics=topic_groups(topics, facts, reads_text),
        signals=signal_rows(signals, units, facts, reads_text),
        reads_text=reads_text,
    )
