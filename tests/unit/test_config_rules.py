"""Config rules across fields (issue 18 item 6): what a city can set is what the code does.

Each rule here was once a value the config accepted and the program then
silently ignored or misread: a robot window that never opened, an RTP range
with no ports, an escalation that came before its warning, a line whose
greeting prompt did not exist, settings the code read but config.yaml never
listed, a verification code that differed between two FastAGI hosts, the
robot spending the IVR's retry budget, and a prompt promising an SMS nobody
sends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from callback_robot.store import RobotStore
from callback_robot.windows import in_call_window, next_window_start
from core.config import CallWindow, ConfigError, HotlineConfig, RobotConfig, load_config
from core.deadlines import is_working_day
from core.paths import project_dir
from db.session import make_engine, make_session_factory
from ivr.inbound import InboundFlow
from ivr.verification import ticket_code
from prompts.build import CATALOG, PromptLibrary, load_catalog
from prompts.phrases import PhraseCache
from tests.support.config import write_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHIPPED = project_dir() / "config.yaml"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def refusal(path: Path) -> str:
    """The one-line ConfigError loading `path` gives."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


# -- 1. robot call windows: across midnight is the night, equal ends are refused ---------
NIGHT = RobotConfig(call_windows=[CallWindow(start=time(22, 0), end=time(6, 0))])


def test_a_window_across_midnight_is_the_night() -> None:
    assert in_call_window(local(2026, 11, 25, 22, 0), NIGHT, SHANGHAI)
    assert in_call_window(local(2026, 11, 25, 23, 59), NIGHT, SHANGHAI)
    assert in_call_window(local(2026, 11, 26, 0, 0), NIGHT, SHANGHAI)
    assert in_call_window(local(2026, 11, 26, 5, 59), NIGHT, SHANGHAI)
    assert not in_call_window(local(2026, 11, 26, 6, 0), NIGHT, SHANGHAI)
    assert not in_call_window(local(2026, 11, 26, 12, 0), NIGHT, SHANGHAI)
    assert not in_call_window(local(2026, 11, 26, 21, 59), NIGHT, SHANGHAI)


def test_the_next_night_window_opens_in_the_evening() -> None:
    assert next_window_start(local(2026, 11, 26, 12, 0), NIGHT, SHANGHAI) == local(
        2026, 11, 26, 22, 0
    )
    inside = local(2026, 11, 26, 3, 0)
    assert next_window_start(inside, NIGHT, SHANGHAI) == inside


def test_a_window_that_ends_at_midnight_runs_to_midnight() -> None:
    evening = RobotConfig(call_windows=[CallWindow(start=time(20, 0), end=time(0, 0))])
    assert in_call_window(local(2026, 11, 25, 23, 30), evening, SHANGHAI)
    assert not in_call_window(local(2026, 11, 26, 0, 0), evening, SHANGHAI)
    assert not in_call_window(local(2026, 11, 26, 8, 0), evening, SHANGHAI)


def test_a_night_belongs_to_the_day_it_starts_on_for_working_days_only() -> None:
    robot = NIGHT.model_copy(update={"working_days_only": True})
    # 2026-11-27 is a Friday: its night runs into Saturday morning
    assert in_call_window(local(2026, 11, 27, 23, 0), robot, SHANGHAI)
    assert in_call_window(local(2026, 11, 28, 3, 0), robot, SHANGHAI)
    # Saturday's night (and so Sunday morning) is not a working one
    assert not in_call_window(local(2026, 11, 28, 23, 0), robot, SHANGHAI)
    assert not in_call_window(local(2026, 11, 29, 3, 0), robot, SHANGHAI)
    # Sunday's night is not either, though Monday is a working day
    assert not in_call_window(local(2026, 11, 30, 3, 0), robot, SHANGHAI)
    assert next_window_start(local(2026, 11, 28, 12, 0), robot, SHANGHAI) == local(
        2026, 11, 30, 22, 0
    )


clock_times = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
any_windows = st.lists(
    st.tuples(clock_times, clock_times)
    .filter(lambda w: w[0] != w[1])
    .map(lambda w: CallWindow(start=w[0], end=w[1])),
    min_size=1,
    max_size=3,
)
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


def opens_at(day: date, window: CallWindow) -> tuple[datetime, datetime]:
    """The span of `window` opened on `day`, as aware local datetimes."""
    start = datetime.combine(day, window.start, tzinfo=SHANGHAI)
    end_day = day if window.start < window.end else day + timedelta(days=1)
    return start, datetime.combine(end_day, window.end, tzinfo=SHANGHAI)


@settings(max_examples=300, deadline=None)
@given(moments, any_windows, st.booleans())
def test_window_decision_matches_the_spans_each_day_opens(
    now: datetime, spans: list[CallWindow], working: bool
) -> None:
    robot = RobotConfig(call_windows=spans, working_days_only=working)
    today = now.astimezone(SHANGHAI).date()
    expected = any(
        start <= now < end
        for day in (today - timedelta(days=1), today)
        if not working or is_working_day(day)
        for start, end in (opens_at(day, w) for w in spans)
    )
    assert in_call_window(now, robot, SHANGHAI) == expected
    start = next_window_start(now, robot, SHANGHAI)
    if start is not None:
        assert start >= now and in_call_window(start, robot, SHANGHAI)


def test_a_window_whose_start_equals_its_end_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, robot={"call_windows": [{"start": "09:00", "end": "09:00"}]})
    message = refusal(path)
    assert "robot.call_windows.0.end" in message
    assert "'09:00'" in message


def test_a_night_window_loads(tmp_path: Path) -> None:
    path = write_config(tmp_path, robot={"call_windows": [{"start": "22:00", "end": "06:00"}]})
    assert load_config(path).robot.call_windows[0].start == time(22, 0)


# -- 1. the other cross-field rules --------------------------------------------------------
def test_an_rtp_range_without_ports_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, asterisk={"sip": {"rtp_start": 20000, "rtp_end": 10000}})
    message = refusal(path)
    assert "asterisk.sip.rtp_end" in message and "(got 10000)" in message
    equal = write_config(
        tmp_path / "equal", asterisk={"sip": {"rtp_start": 20000, "rtp_end": 20000}}
    )
    assert "asterisk.sip.rtp_end" in refusal(equal)


def test_an_escalation_after_the_warning_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, deadlines={"warn_hours_before": 24, "escalate_hours_before": 48})
    message = refusal(path)
    assert "deadlines.escalate_hours_before" in message and "(got 48)" in message
    same = write_config(
        tmp_path / "same", deadlines={"warn_hours_before": 24, "escalate_hours_before": 24}
    )
    assert load_config(same).deadlines.escalate_hours_before == 24


def test_a_line_whose_greeting_is_not_a_prompt_is_refused(tmp_path: Path) -> None:
    lines = [
        {"did": "12345", "name": "main", "greeting": "greeting_main"},
        {"did": "12399", "name": "new line", "greeting": "greeting_new_line"},
    ]
    message = refusal(write_config(tmp_path, lines=lines))
    assert "lines.1.greeting" in message and "'greeting_new_line'" in message
    assert "catalog.yaml" in message


def test_the_shipped_lines_greetings_are_all_prompts() -> None:
    prompts = load_catalog(CATALOG)
    assert all(line.greeting in prompts for line in load_config(SHIPPED).lines)


# -- 2. every setting the code reads is listed in the shipped config.yaml -----------------
# `source` is where the file was read from, not a setting in it
NOT_IN_THE_FILE = {"source"}


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation (`X`, `X | None`, `list[X]`), if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, UnionType):
        for arg in get_args(annotation):
            if (inner := model_of(arg)) is not None:
                return inner
    return None


def missing_fields(model: type[BaseModel], data: object, prefix: str = "") -> list[str]:
    """Dotted names of `model`'s fields not in `data`; a list of models counts all its items."""
    items = data if isinstance(data, list) else [data]
    keys = {key for item in items if isinstance(item, dict) for key in item}
    missing = []
    for name, info in model.model_fields.items():
        dotted = prefix + name
        if dotted in NOT_IN_THE_FILE:
            continue
        if name not in keys:
            missing.append(dotted)
            continue
        inner = model_of(info.annotation)
        if inner is not None:
            values = [item[name] for item in items if isinstance(item, dict) and name in item]
            nested = [
                v for value in values for v in (value if isinstance(value, list) else [value])
            ]
            missing += missing_fields(inner, nested, dotted + ".")
    return missing


def commented_section(text: str, name: str) -> object:
    """An optional section shipped commented out: `# name:` and the `#   ` lines under it."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"# {name}:")), None)
    if start is None:
        return None
    block = [lines[start][2:]]
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))[name]


# sections that are off unless written (default None), shipped as commented examples
OPTIONAL_SECTIONS = [
    name
    for name, info in HotlineConfig.model_fields.items()
    if info.default is None and model_of(info.annotation) is not None
]


def test_every_setting_is_listed_in_the_shipped_config() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    for name in OPTIONAL_SECTIONS:
        assert name not in data, f"{name}: shipped on; one box must not need it"
        data[name] = commented_section(text, name)
        assert data[name] is not None, f"config.yaml has no commented `# {name}:` example"
    assert missing_fields(HotlineConfig, data) == []


def test_the_commented_optional_sections_load_as_their_defaults(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    for name in OPTIONAL_SECTIONS:
        config = load_config(write_config(tmp_path / name, **{name: commented_section(text, name)}))
        section = model_of(HotlineConfig.model_fields[name].annotation)
        assert section is not None and getattr(config, name) == section()


def test_the_shipped_config_lists_the_defaults() -> None:
    """Each listed setting shows the code's default (the file documents them)."""
    shipped = load_config(SHIPPED)
    assert shipped.agi.handler_timeout == HotlineConfig().agi.handler_timeout
    assert shipped.asterisk.start_timeout == HotlineConfig().asterisk.start_timeout
    assert shipped.asterisk.ami == HotlineConfig().asterisk.ami
    assert shipped.database.echo is False
    assert shipped.robot.db_retry_seconds == HotlineConfig().robot.db_retry_seconds
    assert shipped.ivr.ticket_code_secret_env == HotlineConfig().ivr.ticket_code_secret_env


# -- 3. the ticket verification code's secret may come from the environment --------------
def ivr_flow(config: HotlineConfig) -> InboundFlow:
    """The inbound flow of one FastAGI host (no store: only its code secret is looked at)."""
    return InboundFlow(config, PromptLibrary(config), PhraseCache(config), store=None)  # type: ignore[arg-type]


def test_two_hosts_with_the_secret_in_the_environment_give_one_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_TICKET_CODE_SECRET", "shared-by-both-fastagi-hosts-2026")
    first = load_config(write_config(tmp_path / "host-a"))
    second = load_config(write_config(tmp_path / "host-b"))
    assert first.state_dir != second.state_dir
    number = "20261125000042"
    # the secret the IVR reads the code out with (and checks a keyed code against)
    codes = {ticket_code(ivr_flow(config).code_secret, number) for config in (first, second)}
    assert len(codes) == 1
    monkeypatch.delenv("HOTLINE_TICKET_CODE_SECRET")
    # without it each installation generates its own (and keeps it)
    assert first.ticket_code_secret() != second.ticket_code_secret()
    assert first.ticket_code_secret() == first.secrets.get("ticket-codes")


def test_the_variable_is_named_by_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITY_CODE_KEY", "our-city-ticket-code-key-2026")
    config = load_config(write_config(tmp_path, ivr={"ticket_code_secret_env": "CITY_CODE_KEY"}))
    assert config.ticket_code_secret() == "our-city-ticket-code-key-2026"


# -- 4. the robot's store retry budget is its own ------------------------------------------
def test_the_robot_store_retries_for_the_robot_setting(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path, ivr={"db_retry_seconds": 1.5}, robot={"db_retry_seconds": 8})
    )
    engine = make_engine(config.database_url)
    try:
        store = RobotStore(config, make_session_factory(engine))
        assert store.gateway.retry_seconds == 8
    finally:
        engine.dispose()


# -- 6. no prompt promises an SMS: nothing sends one ---------------------------------------
SMS_WORDS = ("短信", "sms", "text message")


def sms_enabled(config: HotlineConfig) -> bool:
    """Whether a setting turns SMS to citizens on: none does, the hotline sends no SMS."""

    def settings_of(data: object) -> list[tuple[str, object]]:
        if not isinstance(data, dict):
            return []
        return [(str(k), v) for k, v in data.items()] + [
            pair for v in data.values() for pair in settings_of(v)
        ]

    return any("sms" in name.lower() and value for name, value in settings_of(config.model_dump()))


def test_no_prompt_promises_an_sms() -> None:
    promising = [
        f"{prompt_id}.{lang}: {text}"
        for prompt_id, texts in load_catalog(CATALOG).items()
        for lang, text in texts.items()
        if any(word in text.lower() for word in SMS_WORDS)
    ]
    assert promising == [] or sms_enabled(load_config(SHIPPED)), promising
