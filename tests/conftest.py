"""Shared fixtures and the one hook that marks each test by what it needs.

`tests/unit` needs nothing outside the process (no Asterisk, no PostgreSQL,
no store), `tests/store` needs a store (SQLite, and PostgreSQL as a parameter),
`tests/live` the real local Asterisk. The marks `asterisk` and `postgres` are
never written by hand: `pytest_collection_modifyitems` derives them from the
fixtures a test uses, and refuses a test that sits in a folder whose promise
it breaks. `./hotline.sh test --quick` is `-m "not asterisk and not postgres"`.

State: one Asterisk per session (its own ports and state folder); every test
that uses it gets its own store, spool and recordings folder (`hotline`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from agents.follow import start_at_end
from core.config import HotlineConfig, load_config
from hotline.app import Hotline, create_hotline, prepare_store
from prompts.build import build_all
from telephony.ami import AMIClient
from telephony.fastagi import FastAGIServer
from tests.support.artifacts import ARTIFACTS
from tests.support.config import TEST_SETTINGS, free_port, vosk_korean_model, write_config
from tests.support.events import wait_for_event  # noqa: F401 (kept importable from here)
from tools.local_asterisk.local import LocalAsterisk, asterisk_user, hand_over
from tools.local_asterisk.provision import find_install
from tools.sandbox.postgres import PostgresMissing, temporary_postgres

TESTS = Path(__file__).resolve().parent

# the fixtures that bring in the real Asterisk, and PostgreSQL
LIVE_FIXTURES = frozenset({"asterisk", "asterisk_install", "hotline", "agi_server", "ami"})
POSTGRES_FIXTURES = frozenset({"postgres_url"})
STORE_FIXTURES = frozenset({"database_url", "store", "migrated_url"})
DERIVED_MARKS = ("asterisk", "postgres")

# no per-example deadline: a time limit in a test flakes on a loaded 2-core machine (seen
# under faketime with three workers); speed is measured in bench/, not asserted here
hypothesis.settings.register_profile("hotline", deadline=None)
hypothesis.settings.load_profile("hotline")


def _uses_postgres(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    parametrized = callspec is not None and callspec.params.get("database_kind") == "postgresql"
    return bool(names & POSTGRES_FIXTURES) or parametrized


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses; refuse a test in a folder it does not fit."""
    wrong: list[str] = []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        by_hand = [m.name for m in item.iter_markers() if m.name in DERIVED_MARKS]
        if by_hand:
            wrong.append(f"{item.nodeid}: marks {by_hand} are derived from fixtures, not written")
        live, postgres = bool(names & LIVE_FIXTURES), _uses_postgres(item)
        if live:
            item.add_marker(pytest.mark.asterisk)
        if postgres:
            item.add_marker(pytest.mark.postgres)
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if folder == "unit" and (live or postgres or names & STORE_FIXTURES):
            wrong.append(f"{item.nodeid}: a unit test uses a store or a server; move it")
        if folder == "store" and live:
            wrong.append(f"{item.nodeid}: a store test uses the real Asterisk; move it to live/")
    if wrong:
        raise pytest.UsageError("tests in the wrong place:\n  " + "\n  ".join(wrong))


def must_have_everything() -> bool:
    """The full run (`./hotline.sh test`) fails on a missing server instead of skipping."""
    return os.environ.get("HOTLINE_TESTS_REQUIRE_ALL") == "1"


# -- the real Asterisk --------------------------------------------------------------
@pytest.fixture(scope="session")
def hotline_config(tmp_path_factory: pytest.TempPathFactory) -> HotlineConfig:
    settings = dict(TEST_SETTINGS)
    model = vosk_korean_model()
    if model:  # the Korean test model: 예 (yes) and 아니요 (no) stand for the answers
        yes_no = {1: ["예"], 2: ["아니요"]}
        settings["speech"] = {
            "model_path": model,
            "survey_words": {
                "contacted": yes_no,
                "resolved": yes_no,
                "satisfaction": {1: ["예"], 3: ["아니요"]},
            },
        }
    return load_config(write_config(tmp_path_factory.mktemp("hotline"), **settings))


@pytest.fixture(scope="session")
def built_prompts(
    hotline_config: HotlineConfig, tmp_path_factory: pytest.TempPathFactory
) -> HotlineConfig:
    """The session's prompts, built once for all test workers and copied to each.

    Each worker's Asterisk reads its own sounds folder; the first worker builds
    under a lock, the others copy its folder (manifest included), after which
    `build_all` finds nothing to do.
    """
    shared = tmp_path_factory.getbasetemp().parent / "prompts-built"
    shared.parent.mkdir(parents=True, exist_ok=True)
    with open(shared.parent / "prompts-built.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shared.exists():
            shutil.copytree(shared, hotline_config.sounds_dir, dirs_exist_ok=True)
        build_all(hotline_config)
        if not shared.exists():
            shutil.copytree(hotline_config.sounds_dir, shared)
    return hotline_config


@pytest.fixture(scope="session")
def asterisk_install(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Debian's Asterisk 22, provisioned (for tests that start an Asterisk of their own)."""
    install = find_install(load_config(write_config(tmp_path_factory.mktemp("probe"))))
    if install is None:
        pytest.fail("Asterisk is not provisioned: run `./hotline.sh test` (it provisions it)")
    return install


@pytest.fixture(scope="session")
def asterisk(built_prompts: HotlineConfig) -> Iterator[LocalAsterisk]:
    local = LocalAsterisk(built_prompts)
    local.up()
    yield local
    messages = local.state / "log" / "messages.log"
    if messages.exists():
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(messages, ARTIFACTS / "asterisk-messages.log")
    local.down()


@pytest.fixture(scope="session")
async def ami(asterisk: LocalAsterisk) -> AsyncIterator[AMIClient]:
    cfg = asterisk.config.asterisk.ami
    # the tests' user: it may write the scripted citizens' AstDB scripts (the robot's may not)
    client = AMIClient(
        cfg.host,
        cfg.port,
        cfg.test_username,
        asterisk.config.ami_test_secret(),
        ping_interval=2.0,
        reconnect_max_delay=1.0,
    )
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="session")
def store_template(asterisk: LocalAsterisk) -> Path:
    """A migrated store with the session's lines, copied for each test that calls."""
    config = own_config(asterisk.config, asterisk.config.state_dir / "tests" / "template")
    prepare_store(config)
    return Path(config.database_url.removeprefix("sqlite:///"))


_own = itertools.count(1)


def own_config(session: HotlineConfig, folder: Path) -> HotlineConfig:
    """The session's config with a store, spool and recordings folder of its own in folder.

    Asterisk, its ports and its secrets stay the session's: the secrets folder
    and Asterisk's state are linked in. folder lies inside the session's state
    folder, which the Asterisk root sees at the same path, so Asterisk can
    write this config's recordings and play the voices its tests make.
    """
    data = yaml.safe_load(session.source.read_text())
    state = folder / "var"
    state.mkdir(parents=True, exist_ok=True)
    for shared in ("secrets", "asterisk"):
        link = state / shared
        if not link.exists():
            link.symlink_to(session.state_dir / shared, target_is_directory=True)
    data["database"] = {**data.get("database", {}), "url": f"sqlite:///{folder / 'hotline.db'}"}
    data["paths"] = {
        **data.get("paths", {}),
        "state_dir": str(state),
        "recordings_dir": str(folder / "recordings"),
        "sounds_dir": str(session.sounds_dir),
    }
    data.setdefault("asterisk", {})["cdr_csv"] = str(session.cdr_csv)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(path)


@pytest.fixture(scope="session")
def start_hotline(
    asterisk: LocalAsterisk, ami: AMIClient, store_template: Path
) -> Callable[[], object]:
    """Start a hotline of its own (store, spool, recordings) on the session's Asterisk.

    Returns an async context manager factory; only one hotline listens at a time
    (they share the FastAGI port the dialplan calls).
    """

    @contextlib.asynccontextmanager
    async def started() -> AsyncIterator[Hotline]:
        folder = asterisk.config.state_dir / "tests" / f"t{next(_own)}"
        config = own_config(asterisk.config, folder)
        shutil.copyfile(store_template, config.database_url.removeprefix("sqlite:///"))
        config.recordings_dir.mkdir(parents=True, exist_ok=True)
        install = find_install(asterisk.config)
        user = asterisk_user(install) if install is not None else None
        if user is not None:
            hand_over(config.recordings_dir, user, always=True)
        # call records name robot attempts by id, and ids start again in each store: the
        # session's records so far are set aside (Asterisk opens the file per record)
        cdr = asterisk.config.cdr_csv
        if cdr.exists():
            cdr.rename(cdr.with_name(f"Master-before-{folder.name}.csv"))
        # where Asterisk writes this hotline's recordings (a dialplan global)
        await ami.action("Setvar", Variable="HOTLINE_RECORDINGS", Value=str(config.recordings_dir))
        app = create_hotline(config)
        start_at_end(app.sessions, config.queue_log)  # this store reads the queue_log from here
        if app.runtime.process is not None:  # as `hotline serve` does, before the first call
            await app.runtime.process.start()
        await app.server.start()
        try:
            yield app
        finally:
            await app.server.stop()
            await app.store.close()

    return started


@pytest.fixture
async def hotline(start_hotline) -> AsyncIterator[Hotline]:  # type: ignore[no-untyped-def]
    """The hotline's FastAGI server with every route, on a store of this test's own."""
    async with start_hotline() as app:
        yield app


@pytest.fixture
async def agi_server(hotline: Hotline) -> FastAGIServer:
    return hotline.server


# -- stores -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a temporary folder, on a free loopback port."""
    try:
        with temporary_postgres(free_port()) as url:
            yield url
    except PostgresMissing as exc:
        if must_have_everything():
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_databases = itertools.count(1)


def _admin_url(base: str) -> str:
    return base.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def _create_database(base: str, template: str | None = None) -> str:
    import psycopg

    name = f"t_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(_admin_url(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return base.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database_kind: str, tmp_path: Path) -> str:
    """An empty database of each kind, this test's own."""
    if database_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return _create_database(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Migrated empty stores made once per session, per kind, to copy from."""
    return {"sqlite_dir": str(tmp_path_factory.mktemp("migrated"))}


@pytest.fixture
def migrated_url(
    request: pytest.FixtureRequest,
    database_kind: str,
    tmp_path: Path,
    migrated_templates: dict[str, str],
) -> str:
    """A migrated, empty store of each kind: a copy of the session's template."""
    from db.migrate import upgrade

    if database_kind == "sqlite":
        template = Path(migrated_templates["sqlite_dir"]) / "template.db"
        if not template.exists():
            upgrade(f"sqlite:///{template}")
        own = tmp_path / "store.db"
        shutil.copyfile(template, own)
        return f"sqlite:///{own}"
    base = request.getfixturevalue("postgres_url")
    if "pg_template" not in migrated_templates:
        url = _create_database(base)
        upgrade(url)
        migrated_templates["pg_template"] = url.rsplit("/", 1)[1]
    return _create_database(base, template=migrated_templates["pg_template"])


@pytest.fixture
def store(migrated_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated, empty store of each kind (SQLite, PostgreSQL)."""
    from db.session import make_engine, make_session_factory

    engine = make_engine(migrated_url)
    yield make_session_factory(engine)
    engine.dispose()
