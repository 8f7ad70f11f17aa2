"""Agents' performance (绩效考核): each agent's measured work in a period, aggregated in SQL.

Per agent, over a period [start, end) (UTC instants of local midnights):

- answered: the agent's CONNECT rows in queue_log (MemberName = the login) in the period.
  A call is counted on the day it was answered: a call answered at 23:58 and ended
  at 00:03 is the first day's, with its whole talk. A call transferred from one agent
  to another (TRANSFER / BLINDTRANSFER / ATTENDEDTRANSFER, then CONNECT by the second)
  is an answer for each of them.
- rang_out: RINGNOANSWER rows in the period (the phone rang, nobody picked it up).
- handle: the talk of each answered call, from the row that ended the agent's part:
  COMPLETECALLER / COMPLETEAGENT (calltime, data2) or a transfer (calltime, data4),
  belonging to a CONNECT of the same call by the same agent in the period;
  average handle = handle seconds / calls ended.
- time in states, from `agent_states`: each change lasts until the agent's next
  change (the last one until the end of the period, or now), clipped to the period,
  so a pause spanning the end of a shift or of the period is cut at the boundary.
  logged in = every state but logged_out; paused by reason; on call (talk);
  wrap-up = each wrap_up stretch capped at the call's queue's `wrapup_seconds`
  (app_queue writes no line when wrap-up ends: the agent is ready again after it).
- occupancy = (on call + wrap-up) / (logged in - paused); None with no such time.
- tickets filed (Ticket.agent_id, accepted in the period), of which 直办
  (handling = direct); the valid callbacks (surveyed in the period) of the tickets
  they filed, as counts for the three rates (computed by the caller).
- quality: the quality scores given in the period (scored_at), their count and sum.

Every aggregate is one GROUP BY statement; Python only divides and adds up teams.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from agents.store import WRAP_UP_EVENTS
from core.periods import Period, PeriodError, date_range
from core.vocabulary import AgentState, Handling
from db.models import (
    Agent,
    AgentStateChange,
    QualityScore,
    QueueLogEntry,
    Ticket,
    User,
    ValidCallback,
)

NO_TEAM = "未分组"
COMPLETES = ("COMPLETECALLER", "COMPLETEAGENT")
TRANSFERS = tuple(sorted(WRAP_UP_EVENTS - set(COMPLETES)))


def day_period(label: str) -> Period:
    """'2026-12-04' -> that local day."""
    one = date_range(label, label)
    return Period(one.first.isoformat(), one.first, one.end)


def period_of(today: date, *, day: str = "", week: str = "", month: str = "") -> Period:
    """The one period named (a day, an ISO week, a calendar month); with none, today."""
    from core.periods import calendar_month, iso_week

    if sum(map(bool, (day, week, month))) > 1:
        raise PeriodError("give one period: a day, a week or a month")
    if week:
        return iso_week(week)
    if month:
        return calendar_month(month)
    return day_period(day or today.isoformat())


@dataclass
class AgentFigures:
    """One agent's (or a team's: the sum of its agents') figures in a period."""

    agent_id: int | None
    login: str
    team: str
    answered: int = 0
    rang_out: int = 0
    ended: int = 0  # calls whose end (complete or transfer) gave a talk time
    handle_seconds: int = 0
    logged_in_seconds: float = 0.0
    talk_seconds: float = 0.0  # time on call, from the states
    wrap_seconds: float = 0.0
    pauses: dict[str, float] = field(default_factory=dict)  # reason -> seconds
    tickets: int = 0
    direct: int = 0
    valid: int = 0
    contacted: int = 0
    resolved: int = 0
    satisfied: int = 0
    basic: int = 0
    scores: int = 0
    score_sum: float = 0.0

    @property
    def paused_seconds(self) -> float:
        return sum(self.pauses.values())

    @property
    def average_handle(self) -> float | None:
        return self.handle_seconds / self.ended if self.ended else None

    @property
    def average_wrap(self) -> float | None:
        return self.wrap_seconds / self.ended if self.ended else None

    @property
    def occupancy(self) -> float | None:
        available = self.logged_in_seconds - self.paused_seconds
        return (self.talk_seconds + self.wrap_seconds) / available if available > 0 else None

    @property
    def direct_share(self) -> float | None:
        return self.direct / self.tickets if self.tickets else None

    @property
    def quality(self) -> float | None:
        return self.score_sum / self.scores if self.scores else None

    def add(self, other: AgentFigures) -> None:
        for name in (
            "answered",
            "rang_out",
            "ended",
            "handle_seconds",
            "logged_in_seconds",
            "talk_seconds",
            "wrap_seconds",
            "tickets",
            "direct",
            "valid",
            "contacted",
            "resolved",
            "satisfied",
            "basic",
            "scores",
            "score_sum",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, seconds in other.pauses.items():
            self.pauses[reason] = self.pauses.get(reason, 0.0) + seconds


def _epoch(column: Any, dialect: str) -> Any:
    """Seconds since 1970 of a UTC timestamp column, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", column)
    return (func.julianday(column) - literal_column("2440587.5")) * literal_column("86400.0")


def _greatest(dialect: str, *values: Any) -> Any:
    return func.greatest(*values) if dialect == "postgresql" else func.max(*values)


def _least(dialect: str, *values: Any) -> Any:
    return func.least(*values) if dialect == "postgresql" else func.min(*values)


def _ones(condition: Any) -> Any:
    return func.sum(case((condition, literal_column("1")), else_=literal_column("0")))


def agent_figures(
    session: Session,
    start: datetime,
    end: datetime,
    now: datetime,
    wrapup: Mapping[str, int],
    default_wrapup: int,
) -> list[AgentFigures]:
    """Every agent's figures in [start, end), by login; agents without calls with zeros.

    wrapup: each queue's `wrapup_seconds`; default_wrapup for a call of no known queue.
    """
    dialect = session.get_bind().dialect.name
    agents = session.execute(
        select(Agent.id, User.username, Agent.team)
        .join(User, Agent.user_id == User.id)
        .order_by(Agent.team, User.username)
    ).all()
    figures = {row.id: AgentFigures(row.id, row.username, row.team or NO_TEAM) for row in agents}
    by_login = {f.login: f for f in figures.values()}
    _queue_log(session, start, end, by_login, dialect)
    _states(session, start, min(end, max(now, start)), figures, wrapup, default_wrapup, dialect)
    _tickets(session, start, end, figures)
    _quality(session, start, end, figures)
    return list(figures.values())


def _seconds_field(column: Any, dialect: str) -> Any:
    """A queue_log field holding whole seconds, as an integer (empty: 0)."""
    text = func.coalesce(column, literal("0"))
    if dialect == "postgresql":
        return case(
            (text.op("~", is_comparison=True)(literal("^[0-9]{1,9}$")), cast(text, Float)),
            else_=0.0,
        )
    return case(
        (
            and_(text != "", ~text.op("GLOB", is_comparison=True)(literal("*[^0-9]*"))),
            cast(text, Float),
        ),
        else_=0.0,
    )


def _queue_log(
    session: Session,
    start: datetime,
    end: datetime,
    by_login: dict[str, AgentFigures],
    dialect: str,
) -> None:
    log = QueueLogEntry
    in_period = and_(log.at >= start, log.at < end)
    counted = session.execute(
        select(
            log.agent,
            _ones(log.event == "CONNECT"),
            _ones(log.event == "RINGNOANSWER"),
        )
        .where(in_period, log.event.in_(("CONNECT", "RINGNOANSWER")))
        .group_by(log.agent)
    ).all()
    for login, answered, rang_out in counted:
        if login in by_login:
            by_login[login].answered = int(answered or 0)
            by_login[login].rang_out = int(rang_out or 0)
    # the end of each answered part: its talk (COMPLETE*: data2, transfers: data4)
    connect = aliased(QueueLogEntry)
    answered_here = (
        select(literal_column("1"))
        .select_from(connect)
        .where(
            connect.callid == log.callid,
            connect.agent == log.agent,
            connect.event == "CONNECT",
            connect.at >= start,
            connect.at < end,
            connect.at <= log.at,
        )
        .exists()
    )
    talk = case(
        (log.event.in_(COMPLETES), _seconds_field(log.data2, dialect)),
        else_=_seconds_field(log.data4, dialect),
    )
    ended = session.execute(
        select(log.agent, func.count(), func.sum(talk))
        .where(log.event.in_(WRAP_UP_EVENTS), log.at >= start, answered_here)
        .group_by(log.agent)
    ).all()
    for login, count, seconds in ended:
        if login in by_login:
            by_login[login].ended = int(count)
            by_login[login].handle_seconds = round(float(seconds or 0))


def _states(
    session: Session,
    start: datetime,
    end: datetime,
    figures: dict[int, AgentFigures],
    wrapup: Mapping[str, int],
    default_wrapup: int,
    dialect: str,
) -> None:
    """Time per state (and pause reason), each change lasting until the next, clipped."""
    if end <= start:
        return
    states = AgentStateChange
    # the changes inside the period, and each agent's last change(s) before it
    before = (
        select(states.agent_id, func.max(states.at).label("at"))
        .where(states.at < start)
        .group_by(states.agent_id)
        .subquery("last_before")
    )
    inside = select(
        states.id, states.agent_id, states.state, states.reason, states.at, states.uniqueid
    ).where(states.at >= start, states.at < end)
    carried = select(
        states.id, states.agent_id, states.state, states.reason, states.at, states.uniqueid
    ).join(before, and_(before.c.agent_id == states.agent_id, before.c.at == states.at))
    rows = union_all(inside, carried).subquery("changes")
    following = (
        select(
            rows.c.agent_id,
            rows.c.state,
            rows.c.reason,
            rows.c.uniqueid,
            rows.c.at,
            func.lead(rows.c.at)
            .over(partition_by=rows.c.agent_id, order_by=(rows.c.at, rows.c.id))
            .label("next_at"),
        )
    ).subquery("stretches")
    start_s, end_s = start.timestamp(), end.timestamp()
    begin = _greatest(dialect, _epoch(following.c.at, dialect), literal(start_s))
    finish = _least(
        dialect,
        func.coalesce(_epoch(following.c.next_at, dialect), literal(end_s)),
        literal(end_s),
    )
    length = _greatest(dialect, finish - begin, literal(0.0))
    # a wrap-up lasts at most its queue's wrap-up time (the queue of the call's CONNECT)
    queue = (
        select(QueueLogEntry.queue)
        .where(QueueLogEntry.callid == following.c.uniqueid, QueueLogEntry.event == "CONNECT")
        .order_by(QueueLogEntry.at.desc())
        .limit(1)
        .scalar_subquery()
    )
    caps = [(queue == literal(name), literal(float(seconds))) for name, seconds in wrapup.items()]
    cap = case(*caps, else_=literal(float(default_wrapup))) if caps else literal(default_wrapup)
    wrap = case(
        (
            following.c.state == AgentState.WRAP_UP.value,
            _least(
                dialect,
                _greatest(
                    dialect,
                    _least(
                        dialect,
                        func.coalesce(_epoch(following.c.next_at, dialect), literal(end_s)),
                        _epoch(following.c.at, dialect) + cap,
                        literal(end_s),
                    )
                    - begin,
                    literal(0.0),
                ),
                length,
            ),
        ),
        else_=literal(0.0),
    )
    totals = session.execute(
        select(
            following.c.agent_id,
            following.c.state,
            following.c.reason,
            func.sum(length),
            func.sum(wrap),
        )
        .where(or_(following.c.next_at.is_(None), following.c.next_at > start))
        .group_by(following.c.agent_id, following.c.state, following.c.reason)
    ).all()
    for agent_id, state, reason, seconds, wrapped in totals:
        one = figures.get(agent_id)
        if one is None:
            continue
        seconds = round(float(seconds or 0), 3)
        state = AgentState(state)
        if state != AgentState.LOGGED_OUT:
            one.logged_in_seconds += seconds
        if state == AgentState.PAUSED:
            key = reason or "未说明"
            one.pauses[key] = one.pauses.get(key, 0.0) + seconds
        elif state == AgentState.ON_CALL:
            one.talk_seconds += seconds
        elif state == AgentState.WRAP_UP:
            one.wrap_seconds += round(float(wrapped or 0), 3)


def _tickets(
    session: Session, start: datetime, end: datetime, figures: dict[int, AgentFigures]
) -> None:
    filed = session.execute(
        select(Ticket.agent_id, func.count(), _ones(Ticket.handling == Handling.DIRECT))
        .where(Ticket.agent_id.is_not(None), Ticket.accepted_at >= start, Ticket.accepted_at < end)
        .group_by(Ticket.agent_id)
    ).all()
    for agent_id, count, direct in filed:
        if agent_id in figures:
            figures[agent_id].tickets, figures[agent_id].direct = int(count), int(direct or 0)
    answers = session.execute(
        select(
            Ticket.agent_id,
            func.count(),
            _ones(ValidCallback.contacted == literal_column("1")),
            _ones(ValidCallback.resolved == literal_column("1")),
            _ones(ValidCallback.satisfaction == literal_column("1")),
            _ones(ValidCallback.satisfaction == literal_column("2")),
        )
        .join(Ticket, Ticket.id == ValidCallback.ticket_id)
        .where(
            Ticket.agent_id.is_not(None),
            ValidCallback.surveyed_at >= start,
            ValidCallback.surveyed_at < end,
        )
        .group_by(Ticket.agent_id)
    ).all()
    for agent_id, valid, contacted, resolved, satisfied, basic in answers:
        if agent_id in figures:
            one = figures[agent_id]
            one.valid, one.contacted, one.resolved = int(valid), int(contacted), int(resolved)
            one.satisfied, one.basic = int(satisfied), int(basic)


def _quality(
    session: Session, start: datetime, end: datetime, figures: dict[int, AgentFigures]
) -> None:
    rows = session.execute(
        select(QualityScore.agent_id, func.count(), func.sum(QualityScore.total))
        .where(QualityScore.scored_at >= start, QualityScore.scored_at < end)
        .group_by(QualityScore.agent_id)
    ).all()
    for agent_id, count, total in rows:
        if agent_id in figures:
            figures[agent_id].scores, figures[agent_id].score_sum = int(count), float(total or 0)


def team_figures(agents: list[AgentFigures]) -> list[AgentFigures]:
    """Each team's figures: the sum of its agents' (a transferred call counts per agent)."""
    teams: dict[str, AgentFigures] = {}
    for one in agents:
        team = teams.setdefault(one.team, AgentFigures(None, one.team, one.team))
        team.add(one)
    return [teams[name] for name in sorted(teams)]


# -- quality scores ------------------------------------------------------------------
class ScoreError(ValueError):
    """A score that does not fit the checklist (named in the message)."""


def check_items(checklist: Mapping[str, int], given: Mapping[str, str]) -> dict[str, int]:
    """Every checklist item scored, 0..its max, whole points; nothing else."""
    unknown = sorted(set(given) - set(checklist))
    if unknown:
        raise ScoreError(f"不在评分表中 / not a checklist item: {', '.join(unknown)}")
    points: dict[str, int] = {}
    for item, most in checklist.items():
        text = (given.get(item) or "").strip()
        if not text.isdigit() or len(text) > 4:
            raise ScoreError(f"{item}：请填 0–{most} 的整数 / {item}: a whole number 0-{most}")
        value = int(text)
        if value > most:
            raise ScoreError(f"{item}：最多 {most} 分 / {item}: at most {most}")
        points[item] = value
    return points


def answered_by(session: Session, uniqueid: str) -> list[tuple[int, str]]:
    """The agents who answered a call (a transferred call: each of them), in order."""
    rows = session.execute(
        select(Agent.id, User.username, func.min(QueueLogEntry.at))
        .join(User, Agent.user_id == User.id)
        .join(QueueLogEntry, QueueLogEntry.agent == User.username)
        .where(QueueLogEntry.callid == uniqueid, QueueLogEntry.event == "CONNECT")
        .group_by(Agent.id, User.username)
        .order_by(func.min(QueueLogEntry.at))
    ).all()
    return [(row[0], row[1]) for row in rows]


def save_score(
    session: Session,
    uniqueid: str,
    agent_id: int,
    scored_by: str,
    points: Mapping[str, int],
    note: str | None,
) -> QualityScore:
    score = QualityScore(
        uniqueid=uniqueid,
        agent_id=agent_id,
        scored_by=scored_by,
        items=json.dumps(dict(points), ensure_ascii=False),
        total=float(sum(points.values())),
        note=note or None,
    )
    session.add(score)
    session.flush()
    return score


def scores_of(session: Session, uniqueid: str) -> list[tuple[QualityScore, str]]:
    """The scores given to a call, oldest first, with the scored agent's login."""
    rows = session.execute(
        select(QualityScore, User.username)
        .join(Agent, Agent.id == QualityScore.agent_id)
        .join(User, Agent.user_id == User.id)
        .where(QualityScore.uniqueid == uniqueid)
        .order_by(QualityScore.scored_at, QualityScore.id)
    ).all()
    return [(row[0], row[1]) for row in rows]
