"""A deterministic, realistic demo city for `hotline demo-data`.

The dashboard, the rankings and the snail seat only show their worth on a
city with years of tickets, so this package builds one into an empty store:
a five-level department tree (region, city, banners/districts and city
bureaus, streets/townships, communities/villages), tickets with weekday,
holiday and seasonal rhythms (heating in winter, wage arrears before the
Spring Festival, construction in summer, schools in August), their handling
events, the robot's callbacks and the survey answers behind the three rates.

Everything comes from one `random.Random(seed)` drawn in a fixed order (the
tree, then the calendar, then the tickets day by day), so the same seed,
`until` and size give byte-identical data on SQLite and PostgreSQL. Each
unit has a hidden quality that shifts its rates, returns, lateness and stuck
tickets; the model's intercepts are solved for this tree so the city as a
whole lands on the seed city's figures (response 95.7%, resolution 83.7%,
satisfaction 97.2%, completion 97.2%, robot success 72%), while units still
differ and a few clearly weak ones end up in the snail seat.

Lives are simulated in local wall-clock time up to the end of `until` (the
demo's "now"): whatever would happen later is not written, so the last days'
tickets are still open. Rows are written in chunks of about
`volume.CHUNK_TICKETS` tickets through `db.bulk` (memory stays flat), all in
one transaction, so an interrupted run leaves the store empty.

The modules: `data` (the city's static data and target figures), `tree`
(departments and who handles what), `volume` (each day's tickets),
`calibration` (the rate model), `simulation` (a ticket's life, with
`handling` and `callbacks`), `speech` (what citizens say, with recognition
noise), `planted` (two local surges and an over-claiming unit, named in the
summary so the monthly analysis can be checked against them), `rows` and
`summary` (what is written and reported), `draws` (drawing from the random
stream).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from db import bulk
from db.models import (
    Base,
    CallbackAttempt,
    Department,
    SurveyAnswer,
    Ticket,
    TicketEvent,
    TicketSequence,
    ValidCallback,
)
from db.session import unit_of_work
from tools.demo_city.calibration import calibrate
from tools.demo_city.planted import overclaim_line, plan_surges
from tools.demo_city.rows import Chunk, Ids
from tools.demo_city.simulation import City
from tools.demo_city.summary import DemoSummary, Totals
from tools.demo_city.tree import Tree, category_routes
from tools.demo_city.volume import calendar, category_mass, chunks, recent_open

__all__ = ["DemoError", "DemoSummary", "generate_demo_city"]

ROWS_MODELS: tuple[type[Base], ...] = (
    Department,
    Ticket,
    TicketEvent,
    CallbackAttempt,
    SurveyAnswer,
    ValidCallback,
)


class DemoError(Exception):
    """The demo city cannot be generated here; the message is one line for the user."""


def generate_demo_city(
    sessions: sessionmaker[Session],
    config: HotlineConfig,
    seed: int = 12345,
    tickets: int = 300_000,
    until: date | None = None,
    years: float = 2.5,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill an empty store with a demo city; same seed, until and size give identical rows.

    Raises DemoError (nothing written) if the store already holds tickets or a
    department tree, or if the size makes no sense.
    """
    if tickets < 1:
        raise DemoError(f"the demo city needs at least one ticket (got {tickets})")
    if not 0 < years <= 20:
        raise DemoError(f"years must be more than 0 and at most 20 (got {years})")
    tz = ZoneInfo(config.timezone)
    last = until or datetime.now(tz).date()
    first = last - timedelta(days=max(1, round(years * 365.25)) - 1)
    rng = random.Random(seed)
    report = progress or (lambda done, total: None)
    with unit_of_work(sessions) as session:
        _refuse_non_empty(session)
        ids = Ids(bulk.next_ids(session, ROWS_MODELS))
        tree = Tree(rng, ids.next["departments"])
        ids.next["departments"] += len(tree.units)
        bulk.insert_rows(session, Department, [unit.row() for unit in tree.units])
        days = calendar(rng, tickets, first, last)
        routes = category_routes(tree)
        model = calibrate(routes, category_mass(days), recent_open(days, tickets))
        cutoff = datetime.combine(last + timedelta(days=1), time())
        surges = plan_surges(tree, routes, days)
        city = City(rng, config, tree, routes, model, ids, cutoff, tickets, surges)
        totals = Totals()
        report(0, tickets)
        for run in chunks(days):
            rows = city.chunk(run)
            _write(session, rows)
            totals.add(rows)
            report(totals.tickets, tickets)
        bulk.sync_id_sequences(session, ROWS_MODELS)
    planted = [surge.describe() for surge in surges]
    planted.append(overclaim_line(tree.overclaimer, *city.overclaims))
    return totals.summary(len(tree.units), first, last, tuple(planted))


def _refuse_non_empty(session: Session) -> None:
    if bulk.holds_tickets(session):
        raise DemoError(
            "the store already holds tickets; point database.url at an empty database "
            "(then `hotline db upgrade`) to generate the demo city"
        )
    if bulk.holds_departments(session):
        raise DemoError(
            "the store already holds a department tree; point database.url at an empty "
            "database (then `hotline db upgrade`) to generate the demo city"
        )


def _write(session: Session, rows: Chunk) -> None:
    bulk.insert_rows(session, Ticket, rows.tickets)
    bulk.insert_rows(session, TicketEvent, rows.events)
    bulk.insert_rows(session, CallbackAttempt, rows.attempts)
    bulk.insert_rows(session, SurveyAnswer, rows.answers)
    bulk.insert_rows(session, ValidCallback, rows.valid)
    bulk.insert_rows(session, TicketSequence, rows.sequences)
