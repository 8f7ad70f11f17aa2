"""Properties of the metrics and the import over random cities' data.

Rates stay in [0, 1]; a unit's rolled-up counts are its own plus its
children's; ranking is a permutation within each peer group; SQLite and
PostgreSQL agree; importing the same records twice changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from fractions import Fraction as F
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import load_config
from db.models import Base
from db.session import make_engine, make_session_factory, unit_of_work
from reports.metrics import Counts, RateRules, unit_figures
from reports.ranking import rank_peer_groups
from tests.support.config import write_config
from tests.support.metrics_city import TREE, add_callback, add_ticket, build_city, utc
from tickets.intake.importer import Importer, body_items

CODES = [code for code, *_ in TREE]
START = utc(2026, 11, 1)
END = utc(2026, 12, 1)
RULES = RateRules(F(9, 10), F(3, 10), F(7, 20), F(7, 20))

answers = st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3))
callbacks = st.lists(
    st.tuples(st.sampled_from(CODES), st.integers(-3 * 24, 33 * 24), answers), max_size=40
)
tickets = st.lists(
    st.tuples(st.sampled_from(CODES), st.integers(0, 29 * 24), st.booleans()), max_size=15
)


def fresh_schema(url: str):  # type: ignore[no-untyped-def]
    """An engine on url with empty tables (create_all: migrations are tested in test_store)."""
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    return engine


def fill(url: str, calls, opened) -> list:  # type: ignore[no-untyped-def]
    """Load one random month into an empty database and return its rolled-up and own figures."""
    engine = fresh_schema(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            units = build_city(session)
            for code, hours, answer in calls:
                add_callback(session, units[code], START + timedelta(hours=hours), answer)
            for code, hours, closed in opened:
                add_ticket(session, units[code], START + timedelta(hours=hours), closed)
            rolled = unit_figures(session, START, END, RULES)
            own = unit_figures(session, START, END, RULES, rolled_up=False)
    finally:
        engine.dispose()
    return [rolled, own]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=callbacks, opened=tickets)
def test_rates_bounded_roll_up_additive_ranking_a_permutation(calls, opened) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        rolled, own = fill(f"sqlite:///{folder}/m.db", calls, opened)
    by_id = {u.department_id: u for u in rolled}
    own_by_id = {u.department_id: u for u in own}
    for unit in rolled:
        for rate in unit.rates:
            assert rate is None or 0 <= rate <= 1
        assert (unit.rates.composite is None) == (unit.counts.valid == 0)
        children = [u for u in rolled if u.parent_id == unit.department_id]
        expected = own_by_id[unit.department_id].counts
        for child in children:
            expected = expected + child.counts
        assert unit.counts == expected
    top = [u for u in rolled if u.parent_id is None]
    in_window = [c for c in calls if 0 <= c[1] < 30 * 24]
    assert sum((u.counts for u in top), Counts()).valid == len(in_window)
    for group in rank_peer_groups(rolled).values():
        ranked = [r for r in group if r.rank is not None]
        assert sorted(r.position for r in ranked) == list(range(1, len(ranked) + 1))
        assert [r.rank for r in ranked] == sorted(r.rank for r in ranked)
        assert all(r.rank <= r.position for r in ranked)
        assert all(by_id[r.unit.department_id].counts.valid > 0 for r in ranked)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=callbacks, opened=tickets)
def test_sqlite_and_postgresql_agree(postgres_url: str, calls, opened) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    name = f"prop_{os.getpid()}"
    admin = (
        postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
        + "/postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with tempfile.TemporaryDirectory() as folder:
        on_sqlite = fill(f"sqlite:///{folder}/m.db", calls, opened)
    on_postgres = fill(postgres_url.rsplit("/", 1)[0] + f"/{name}", calls, opened)
    strip = lambda figures: [[(u.code, u.counts, u.rates) for u in f] for f in figures]  # noqa: E731
    assert strip(on_sqlite) == strip(on_postgres)


record = st.fixed_dictionaries(
    {
        "external_id": st.sampled_from([f"E-{i}" for i in range(6)]),
        "caller_number": st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
        "accepted_at": st.sampled_from(["2026-11-16 09:00", "2026-11-17T10:30:00+08:00"]),
        "status": st.sampled_from(["accepted", "dispatched", "closed"]),
        "department_code": st.sampled_from(["S1", "V1", "D3"]),
        "category": st.sampled_from(["教育", "三农", ""]),
    }
).map(lambda r: {**r, "closed_at": "2026-11-18 12:00"} if r["status"] == "closed" else r)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record, max_size=6, unique_by=lambda r: r["external_id"]))
def test_importing_the_same_records_twice_changes_nothing(records) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/i.db"
        config = load_config(write_config(Path(folder) / "cfg", database={"url": url}))
        engine = fresh_schema(url)
        sessions = make_session_factory(engine)
        with unit_of_work(sessions) as session:
            build_city(session)
        from tests.support.snapshots import snapshot

        Importer(sessions, config).run(body_items({"tickets": records}))
        before = snapshot(sessions)
        again = Importer(sessions, config).run(body_items({"tickets": records}))
        after = snapshot(sessions)
        engine.dispose()
    assert again.counts["ticket"]["created"] == 0
    assert again.counts["ticket"]["updated"] == 0
    assert again.errors == []
    assert after == before
