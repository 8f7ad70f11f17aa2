"""未诉先办, composed: `hotline analyse --month`, and the daily warning `hotline serve` runs.

The month's analysis reads across features that stand alone (the ticket's area
comes from `tickets.area`, the answers offered from `kb.offers`, everything else
from `analysis`), so it is put together here, on the composition floor:

1. fill in the area of tickets that have none yet, and suggest a category for
   IVR tickets without one (under `topics.min_confidence` staff decide);
2. surges (weekly Farrington, Benjamini-Hochberg over the run), topics, 每月一题
   candidates and governance progress, unit signals, the knowledge base's month;
3. write it all as one run, in one transaction: a failure leaves a `failed` run
   and nothing half-written.

Topics are found in a forked worker process (`analysis.topics_worker`) while this
process does the rest of step 2: the two halves share nothing but the month's texts.

The daily warning (EARS C2 or EWMA on yesterday's counts) is a run of its own
kind, `daily`, once per local day after `hotspots.daily.at`; the month is analysed
once on `hotspots.run_day` for the month before.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from analysis import accountability, bands, candidates, category_model, runs, summary, surges
from analysis import topics as topic_analysis
from analysis.counts import DailyCounts, daily_counts
from analysis.topics_worker import TopicsWorker
from core.config import HotlineConfig, project_dir
from db.models import AnalysisRun, GovernanceTopic
from db.session import unit_of_work
from kb import entries as kb_entries
from kb import offers as kb_offers
from tickets.area import fill_areas

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE = timedelta(hours=1)
# numpy's BLAS threads for the month's analysis. Its matrices are small (a category's
# month: ~1,000 requests x ~300 terms; a week's ~3,000 series of 100 weeks), so threads
# cost more in hand-offs than they gain, and on a busy box they wait for each other:
# NMF for the demo city's month took 5.4 s with two threads and 1.2 s with one.
ANALYSIS_THREADS = 1


def code_version() -> str:
    """The commit the analysis ran from (a run says which code made it)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=project_dir(),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def settings_of(config: HotlineConfig) -> dict[str, Any]:
    """The settings a run depends on, stored with it."""
    return {
        "timezone": config.timezone,
        "hotspots": config.hotspots.model_dump(),
        "topics": config.topics.model_dump(),
        "accountability": config.accountability.model_dump(),
        "kb": config.kb.model_dump(exclude={"enabled"}),
    }


@dataclass(frozen=True)
class MonthResult:
    run_id: int
    flags: int
    topics: int
    signals: int
    lines: list[str]


def _prepare(session: Session, config: HotlineConfig, month: str) -> None:
    """Areas for tickets without one; categories suggested where none was given."""
    filled = fill_areas(session, None)
    if filled:
        log.info("areas filled in for %d tickets", filled)
    start, end = summary.month_period(month).utc_range(config.timezone)
    waiting = category_model.tickets_without_category(session, start, end)
    if not waiting:
        return
    try:
        model = category_model.train_from_store(session, config.topics)
    except ValueError as exc:  # fewer than two categories set by people: nothing to learn
        log.info("no category suggestions: %s", exc)
        return
    suggested = category_model.apply_suggestions(session, waiting, model, config.topics)
    log.info("categories suggested for %d of %d tickets", suggested, len(waiting))


CHART_WEEKS = 52


def _month_counts(session: Session, config: HotlineConfig, month: str) -> DailyCounts:
    """One GROUP BY for the month's surges and its charts (their spans overlap by years)."""
    surge_span = surges.weekly_span(month, config.hotspots)
    chart = bands.chart_span(summary.month_period(month).end, CHART_WEEKS, config.hotspots)
    first, end = min(surge_span[0], chart[0]), max(surge_span[1], chart[1])
    return daily_counts(session, first, end, config.tz)


def _series(
    session: Session, config: HotlineConfig, stored: list[Any], month: str, counts: DailyCounts
) -> dict[str, Any]:
    """Each weekly flag's series with its expected band, for the console's charts."""
    end = summary.month_period(month).end
    weekly = [flag for flag in stored if flag.period == "week"]
    charts = bands.weekly_series_of(
        session,
        [(flag.category, flag.area_id, flag.level) for flag in weekly],
        end,
        CHART_WEEKS,
        config.hotspots,
        config.tz,
        counts,
    )
    return {str(flag.id): chart for flag, chart in zip(weekly, charts, strict=True)}


def analyse_month(factory: sessionmaker[Session], config: HotlineConfig, month: str) -> MonthResult:
    """Analyse one local month and store it as a run; raises after marking a failed run."""
    summary.month_period(month)  # a malformed month fails here, before anything is written
    # the worker is forked before any session is open; it reads jieba's dictionary meanwhile
    with threadpool_limits(ANALYSIS_THREADS), TopicsWorker(ANALYSIS_THREADS) as worker:
        with unit_of_work(factory) as session:
            _prepare(session, config, month)
        with unit_of_work(factory) as session:
            run_id = runs.start_run(session, month, settings_of(config), code_version()).id
        return _analyse_run(factory, config, month, run_id, worker)


def _analyse_run(
    factory: sessionmaker[Session],
    config: HotlineConfig,
    month: str,
    run_id: int,
    worker: TopicsWorker,
) -> MonthResult:
    try:
        with unit_of_work(factory) as session:
            result = _analyse_into(session, config, month, run_id, worker)
    except Exception as exc:
        with unit_of_work(factory) as session:
            runs.fail_run(session, run_id, f"{type(exc).__name__}: {exc}")
        raise
    return result


def _analyse_into(
    session: Session, config: HotlineConfig, month: str, run_id: int, worker: TopicsWorker
) -> MonthResult:
    """The run's two halves at once: topics in the worker, the rest here; then stored.

    Everything is written in this one transaction, topics last: they are what the
    category lines and the topic candidates read.
    """
    run = session.get(AnalysisRun, run_id)
    assert run is not None
    tz = config.tz
    previous = runs.previous_topic_vectors(session, summary.months_before(month, 3))
    finding = worker.topics(topic_analysis.month_texts(session, month, tz), config.topics, previous)
    counts = _month_counts(session, config, month)
    flags = surges.weekly_surges(session, month, config.hotspots, tz, counts)
    signals = accountability.unit_signals(session, month, config.accountability, tz)
    stored_flags = runs.store_flags(session, run, flags)
    runs.store_signals(session, run, signals)
    tree = summary.Tree(session)
    measured = candidates.category_measures(session, month, tz)
    report = _report_without_topics(session, config, month, tree)
    report["series"] = _series(session, config, stored_flags, month, counts)

    month_topics = finding.result()
    runs.store_topics(session, run, month_topics)
    lines = summary.category_lines(session, month, tz, _labels(month_topics))
    ranked = candidates.ranked_candidates(session, measured)
    report["categories"] = [line.as_json() for line in lines]
    report["candidates"] = [_candidate_json(tree, c) for c in ranked.categories[:10]]
    report["topic_candidates"] = [_candidate_json(tree, c) for c in ranked.topics[:10]]
    runs.finish_run(session, run, report)
    return MonthResult(
        run_id, len(flags), len(month_topics), len(signals), [line.line for line in lines]
    )


def _report_without_topics(
    session: Session, config: HotlineConfig, month: str, tree: summary.Tree
) -> dict[str, Any]:
    """The run's summary parts that need no topics: the district grid, 每月一题, the KB."""
    tz = config.tz
    districts, cells = summary.district_grid(
        session, month, tz, config.hotspots.farrington.years_back
    )
    governance = [
        _governance_json(tree, topic, candidates.governance_progress(session, topic, month, tz))
        for topic in session.scalars(
            select(GovernanceTopic).where(GovernanceTopic.start_month <= month)
        )
    ]
    return {
        "grid": {"districts": [list(d) for d in districts], "cells": [c.as_json() for c in cells]},
        "governance": governance,
        "kb": _kb_month(session, config, month),
    }


def _labels(month_topics: list[topic_analysis.TopicRow]) -> dict[str, list[str]]:
    """Each category's largest topics, two terms of each, for its 主要反映 line."""
    labels: dict[str, list[str]] = {}
    for topic in sorted(month_topics, key=lambda t: -t.size):
        labels.setdefault(topic.category, []).append("、".join(topic.label.split("、")[:2]))
    return labels


def _kb_month(session: Session, config: HotlineConfig, month: str) -> dict[str, Any]:
    """The knowledge base's month: per entry offered/heard/accepted/truly deflected; gaps."""
    start, end = summary.month_period(month).utc_range(config.timezone)
    figures = kb_offers.deflection(session, start, end, config.kb.true_deflection_days)
    published = [row for row in kb_entries.current_entries(session) if row.status == "published"]
    found = (
        kb_offers.gaps(session, kb_entries.matcher(published), start, end, config.kb.threshold)
        if published
        else []
    )
    return {
        "entries": [
            {
                "key": f.key,
                "title": f.title,
                "offered": f.offered,
                "heard": f.heard,
                "accepted": f.accepted,
                "true_deflection": f.deflected,
            }
            for f in figures
        ],
        "gaps": [{"topic": g.term, "count": g.count, "tickets": g.tickets} for g in found],
    }


def _candidate_json(tree: summary.Tree, candidate: candidates.Candidate) -> dict[str, Any]:
    return {
        "rank": candidate.rank,
        "category": candidate.category,
        "topic": candidate.topic,
        "volume": candidate.volume,
        "months_in_top10": candidate.months_in_top_ten,
        "unresolved_share": candidate.unresolved_rate,
        "returns": candidate.returns_between_units,
        "districts_above": [tree.name.get(d, str(d)) for d in candidate.districts_above],
        "score": candidate.score,
    }


def _governance_json(
    tree: summary.Tree, topic: GovernanceTopic, progress: candidates.GovernanceProgress
) -> dict[str, Any]:
    return {
        "id": topic.id,
        "title": topic.title,
        "lead_unit": tree.name.get(topic.lead_department_id or 0, ""),
        "start_month": topic.start_month,
        "goal": topic.goal,
        "months": [
            {
                "month": m.month,
                "observed": m.observed,
                "baseline": m.baseline,
                "change": m.change,
                "method": m.method,
            }
            for m in progress.months
        ],
    }


def daily_warning(
    factory: sessionmaker[Session], config: HotlineConfig, day: date
) -> tuple[int, int]:
    """The early warning for one local day, stored as a `daily` run: (run id, flags)."""
    with unit_of_work(factory) as session:
        fill_areas(session, None)
    with unit_of_work(factory) as session:
        run_id = runs.start_run(
            session, day.strftime("%Y-%m"), settings_of(config), code_version(), "daily", day
        ).id
    try:
        with unit_of_work(factory) as session:
            run = session.get(AnalysisRun, run_id)
            assert run is not None
            flags = surges.daily_warnings(session, day, config.hotspots, config.tz)
            runs.store_flags(session, run, flags)
            runs.finish_run(session, run, {"day": day.isoformat(), "flags": len(flags)})
    except Exception as exc:
        with unit_of_work(factory) as session:
            runs.fail_run(session, run_id, f"{type(exc).__name__}: {exc}")
        raise
    return run_id, len(flags)


def due(session: Session, config: HotlineConfig, now: datetime) -> list[tuple[str, str, date]]:
    """What `hotline serve` owes now: yesterday's daily warning, last month's analysis.

    Each only after `hotspots.daily.at` local time, and only if not yet stored. A
    failed run counts as not stored, so it is tried again, but not within an hour of
    the failure: a broken analysis must not take the batch thread every minute.
    """
    local = now.astimezone(config.tz)
    hour, minute = (int(part) for part in config.hotspots.daily.at.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return []
    owed: list[tuple[str, str, date]] = []
    yesterday = local.date() - timedelta(days=1)
    done_daily = session.scalar(
        select(AnalysisRun.id).where(
            AnalysisRun.kind == "daily",
            AnalysisRun.day == yesterday,
            AnalysisRun.status == "done",
        )
    )
    if done_daily is None and not _failed_lately(
        session, "daily", yesterday.strftime("%Y-%m"), now
    ):
        owed.append(("daily", yesterday.strftime("%Y-%m"), yesterday))
    if local.day >= config.hotspots.run_day:
        last_month = (local.date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        if runs.latest_run(session, last_month) is None and not _failed_lately(
            session, "month", last_month, now
        ):
            owed.append(("month", last_month, local.date()))
    return owed


def _failed_lately(
    session: Session, kind: str, month: str, now: datetime, day: date | None = None
) -> bool:
    query = select(AnalysisRun.id).where(
        AnalysisRun.kind == kind,
        AnalysisRun.month == month,
        AnalysisRun.status == "failed",
        AnalysisRun.started_at > now - RETRY_AFTER_FAILURE,
    )
    if day is not None:
        query = query.where(AnalysisRun.day == day)
    return session.scalar(query) is not None


def run_due(factory: sessionmaker[Session], config: HotlineConfig, now: datetime) -> list[str]:
    """Run whatever `due` names; returns what ran, for the log."""
    with unit_of_work(factory) as session:
        owed = due(session, config, now)
    done = []
    for kind, month, day in owed:
        if kind == "daily":
            run_id, count = daily_warning(factory, config, day)
            done.append(f"daily warning {day}: run {run_id}, {count} flags")
        else:
            result = analyse_month(factory, config, month)
            done.append(f"analysis of {month}: run {result.run_id}")
    return done
