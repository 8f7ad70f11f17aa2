"""The hotline's configuration: one YAML file, validated once at start-up.

Every setting has a default a city can override. A wrong value must stop the
program with a single line naming the file, the field and what is allowed, so
`load_config` turns pydantic's multi-line report into a `ConfigError` with that
one line. Secrets never live in the file: it names the environment variable,
and without one the secret is generated once for this installation and kept
owner-only in the state folder (`core.secrets`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.paths import project_dir
from core.secrets import SecretStore
from core.uniqueid import is_systemname

DEFAULT_CONFIG_NAME = "config.yaml"
CONFIG_ENV = "HOTLINE_CONFIG"
# the prompts `hotline prompts build` renders (prompts.build reads the same file); a line's
# greeting must be one of them, or its callers hear nothing before the menu
PROMPT_CATALOG = project_dir() / "prompts" / "catalog.yaml"
# a rule between fields, reported at the field it names (ctx: `field`, relative to the loc)
RULE_ERROR = "config_rule"


class ConfigError(Exception):
    """A configuration problem a user can fix; its message is one line."""


class Section(BaseModel):
    """Base for config sections: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(Section):
    url: str = "sqlite:///var/hotline.db"
    echo: bool = False
    busy_timeout_ms: int = Field(5000, ge=0)


class PathsConfig(Section):
    state_dir: Path = Path("var")
    recordings_dir: Path = Path("var/recordings")
    sounds_dir: Path = Path("var/sounds")
    cache_dir: Path = Path("~/.cache/hotline")


class AmiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = Field("hotline", pattern=r"^[A-Za-z0-9_-]+$")
    secret_env: str = "HOTLINE_AMI_SECRET"
    # the tests' user (may inject dialplan scripts into AstDB); exists only with simulators
    test_username: str = Field("hotline-test", pattern=r"^[A-Za-z0-9_-]+$")
    connect_timeout: float = Field(5.0, gt=0)
    reconnect_max_delay: float = Field(10.0, gt=0)


class SipConfig(Section):
    bind: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(20000, ge=1024, le=65535)
    # each phone's password: $HOTLINE_PHONE_SECRET_<user>, else generated once per phone
    phone_secret_env: str = "HOTLINE_PHONE_SECRET"
    citizen_phones: list[str] = ["6001", "6002", "6003"]

    @field_validator("rtp_end")
    @classmethod
    def _above_rtp_start(cls, value: int, info: ValidationInfo) -> int:
        # an empty range renders into rtp.conf and Asterisk then has no port for any call's audio
        start = info.data.get("rtp_start")
        if start is not None and value <= start:
            raise ValueError(f"must be above asterisk.sip.rtp_start ({start})")
        return value


class AsteriskConfig(Section):
    mode: Literal["auto", "system", "chroot"] = "auto"
    debian_suite: str = "sid"
    # None: read the Debian mirror from this machine's apt sources.
    debian_mirror: str | None = None
    ami: AmiConfig = AmiConfig()
    sip: SipConfig = SipConfig()
    outbound_channel: str = "Local/{number}@hotline-outbound"
    include_simulators: bool = True
    # the bench-only pure-dialplan IVR (dialplans/bench-ivr.conf): capacity benchmarks only
    include_bench: bool = False
    # Asterisk's CDR CSV (cdr_csv), read by the robot's recovery; None: the local one
    cdr_csv: Path | None = None
    # Asterisk's queue_log, tailed into the store (every queue and agent figure); None: local
    queue_log: Path | None = None
    start_timeout: float = Field(60.0, gt=0)
    # this node's name (asterisk.conf systemname): Uniqueids read ast1-1700000000.12, so two
    # nodes never share one; None: one box, 1700000000.12 (grammar: core.uniqueid)
    systemname: str | None = None

    @field_validator("outbound_channel")
    @classmethod
    def _has_number(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain the placeholder {number}, e.g. PJSIP/{number}@trunk")
        return value

    @field_validator("systemname")
    @classmethod
    def _node_name(cls, value: str | None) -> str | None:
        if value is not None and not is_systemname(value):
            raise ValueError(
                "a letter, then letters, digits or _ (at most 32; not callback or attempt),"
                " e.g. ast1"
            )
        return value


class AgiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    handler_timeout: float = Field(3600.0, gt=0)
    # only these addresses may talk FastAGI (Asterisk's); others are closed unread
    allowed_peers: list[str] = ["127.0.0.1", "::1"]

    @field_validator("allowed_peers")
    @classmethod
    def _addresses(cls, peers: list[str]) -> list[str]:
        for peer in peers:
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError:
                raise ValueError(f"{peer!r} is not an IP address or network") from None
        return peers

    max_connections: int = Field(2000, ge=1)
    # `hotline serve`'s call path (event loop, store thread) at this nice value: every call
    # waits on it, Asterisk's channel threads would otherwise crowd it out on a full machine
    nice: int = Field(-10, ge=-20, le=19)
    # the per-installation key in every AGI URL; unset: generated once in the state folder
    key_env: str = "HOTLINE_AGI_KEY"


class IvrConfig(Section):
    menu_retries: int = Field(3, ge=1, le=10)
    key_timeout_ms: int = Field(5000, ge=1000)
    record_max_seconds: int = Field(120, ge=5)
    record_silence_seconds: int = Field(5, ge=0)
    readback_repeats: int = Field(2, ge=0)
    ticket_digits_timeout_ms: int = Field(10000, ge=1000)
    db_retry_seconds: float = Field(3.0, gt=0)
    # the ticket verification code's key: every FastAGI host of one hotline must read the same
    # one, or a citizen's code works only on the host that read it out; unset: generated once
    ticket_code_secret_env: str = "HOTLINE_TICKET_CODE_SECRET"
    # the calls' store work in a process of its own (db.store_process): on a full machine
    # a store thread sharing the event loop's process waits for the CPU at every GIL hand-over
    store_process: bool = True
    reconcile_interval_seconds: int = Field(60, ge=5)
    # a recording or call younger than this may still be in progress: leave it alone
    reconcile_settle_seconds: int = Field(300, ge=0)


DEFAULT_SURVEY_WORDS: dict[str, dict[int, list[str]]] = {
    "contacted": {1: ["是", "联系了", "有"], 2: ["否", "没联系", "没有"]},
    "resolved": {1: ["是", "解决了"], 2: ["否", "没解决"]},
    "satisfaction": {1: ["满意"], 2: ["基本满意"], 3: ["不满意"]},
}


class SpeechConfig(Section):
    # folder of a vosk model; None: transcription is reported as skipped
    model_path: Path | None = None
    transcribe_interval_seconds: int = Field(15, ge=1)
    # a survey question not answered by key: the words that count as each answer
    survey_words: dict[Literal["contacted", "resolved", "satisfaction"], dict[int, list[str]]] = (
        DEFAULT_SURVEY_WORDS
    )
    answer_seconds: int = Field(4, ge=1, le=30)
    # the decoder's search (the model's own conf/model.conf when null): a narrower beam
    # and fewer active hypotheses transcribe faster and hear a little less
    beam: float | None = Field(None, gt=0, le=50)
    max_active: int | None = Field(None, ge=100, le=100_000)

    def decoder(self) -> dict[str, str]:
        """The decoder options that replace the model's own (vosk's model.conf names)."""
        options = {"beam": self.beam, "max-active": self.max_active}
        return {name: str(value) for name, value in options.items() if value is not None}


class PromptsConfig(Section):
    languages: list[Literal["zh", "en"]] = ["zh", "en"]
    voices: dict[str, str] = {"zh": "cmn", "en": "en"}
    words_per_minute: int = Field(175, ge=60, le=400)
    sample_rate: Literal[8000, 16000] = 8000


class CallWindow(Section):
    """A daily span of local time; a start after the end spans midnight (22:00-06:00: the night).

    A night window belongs to the day it starts on (`robot.working_days_only`
    asks about that day). Equal ends are refused: empty or all day, either
    reading would surprise someone.
    """

    start: time
    end: time

    def holds(self, clock: time) -> bool:
        """Whether a local wall-clock time lies in the window (across midnight too)."""
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    @field_validator("end")
    @classmethod
    def _not_the_start(cls, value: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and value == start:
            raise ValueError(
                f"equals start ({start:%H:%M}): a window needs a length; one across "
                "midnight ends before it starts, e.g. 22:00-06:00"
            )
        return value


class LineConfig(Section):
    """One number citizens dial; `answer` says who answers it (GB/T 33358: people, no menu)."""

    did: str = Field(pattern=r"^[0-9]{3,20}$")
    name: str
    greeting: str
    default_category: str | None = None
    # agents: a short greeting, then the queue (a key for a ticket's progress, a key to leave
    # a message); menu: the self-service key menu, for lines that want one
    answer: Literal["agents", "menu"] = "agents"
    queue: str = "hotline-agents"  # a name of `queues`
    # local times people answer this line; []: around the clock (7x24). Outside them the
    # caller is offered the message at once
    staffed_hours: list[CallWindow] = []

    def staffed(self, clock: time) -> bool:
        """Whether people answer this line at a local wall-clock time."""
        return not self.staffed_hours or any(w.holds(clock) for w in self.staffed_hours)


class QueueConfig(Section):
    """One app_queue queue: its members are the agents who log in to it (dialect and
    language seats are queues of their own, GB/T 33358)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    language: Literal["zh", "en"] = "zh"
    # app_queue's ring strategy; leastrecent/fewestcalls spread the work, rrmemory takes turns
    strategy: Literal[
        "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear"
    ] = "leastrecent"
    ring_seconds: int = Field(15, ge=5, le=120)  # an agent's phone rings this long (then RONA)
    retry_seconds: int = Field(1, ge=0, le=30)  # pause before ringing the next agent
    wrapup_seconds: int = Field(10, ge=0, le=600)  # after a call, before the next one rings
    service_level_seconds: int = Field(15, ge=1, le=600)  # GB/T 33358: answered within 15 s
    announce_seconds: int = Field(30, ge=0, le=600)  # position and wait, this often; 0: never
    max_wait_seconds: int = Field(120, ge=5, le=3600)  # then the message is offered
    # ring-no-answer pauses the agent (reason "rona") and the call rings the next one
    pause_on_no_answer: bool = True


class AgentsConfig(Section):
    """The people who answer: their phones (PJSIP seats), pauses and transfer directory."""

    # every seat's SIP password is derived from this key; unset: generated once
    sip_secret_env: str = "HOTLINE_AGENT_SIP_SECRET"
    # PJSIP endpoints rendered for agents: browser phones (WebRTC) and desk phones; an
    # agent account is bound to a free one when it is made
    webrtc_seats: int = Field(20, ge=0, le=2000)
    desk_seats: int = Field(5, ge=0, le=2000)
    pause_reasons: list[str] = ["break", "training", "meeting"]
    # the key that leaves the queue for a message, announced once while waiting
    message_key: str = Field("1", pattern=r"^[0-9*#]$")
    # the key during the greeting that asks for a ticket's progress
    progress_key: str = Field("2", pattern=r"^[0-9*#]$")
    # WebRTC: Asterisk's TLS WebSocket (wss://) for the browser phones
    wss_port: int = Field(8089, ge=1, le=65535)
    # one-key transfers and three-way calls (三方通话): name -> number (digits only)
    directory: dict[str, str] = {"110报警": "110", "12315市场监管": "12315"}

    @field_validator("directory")
    @classmethod
    def _numbers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, number in value.items():
            if not number.isdigit() or len(number) > 20:
                raise ValueError(f"{name}: {number!r} is not a number (digits only)")
        return value


class CallbackConfig(Section):
    """回拨未接来电: every missed caller is called back, agent first (issue 21)."""

    enabled: bool = True
    # a caller who hung up in the queue sooner than this (a wrong number) is not a missed call
    abandon_min_seconds: int = Field(5, ge=0, le=600)
    within_minutes: int = Field(30, ge=1, le=1440)  # the goal: called back within this
    max_attempts: int = Field(3, ge=1, le=10)
    retry_after_minutes: dict[Literal["no_answer", "busy", "failed"], int] = {
        "no_answer": 30,
        "busy": 10,
        "failed": 15,
    }


class MonitoringConfig(Section):
    """话务监控 and 绩效考核: the wallboard, listening in, quality scores (issue 21)."""

    service_level_goal: float = Field(0.95, gt=0, le=1)  # GB/T 33358: answered within 15 s
    completion_goal: float = Field(0.95, gt=0, le=1)  # 接通率 over any 24 hours
    wait_alert_seconds: int = Field(15, ge=1)  # a caller waiting longer is shown red
    # whether the agent hears a beep when a supervisor listens in (ChanSpy without `q`)
    tell_agent: bool = False
    listen_roles: list[Literal["admin", "supervisor"]] = ["supervisor"]
    # a supervisor scores a recorded call against these items, with their points (total 100)
    quality_checklist: dict[str, int] = {
        "规范用语": 25,
        "准确记录诉求": 30,
        "态度": 25,
        "时限告知": 20,
    }


class FarringtonConfig(Section):
    """The weekly detector: improved Farrington (Noufaily et al. 2012)."""

    years_back: int = Field(2, ge=1, le=5)
    window_weeks: int = Field(3, ge=1, le=6)  # ± weeks around the same week of past years
    seasonal_levels: int = Field(10, ge=2, le=20)  # the factor's levels over a year
    trend_p: float = Field(0.05, gt=0, lt=1)  # a trend term is kept only below this p
    reweight_threshold: float = Field(2.58, gt=0)  # Anscombe residual: a past outbreak
    exclude_recent_weeks: int = Field(26, ge=0, le=52)
    alpha: float = Field(0.01, gt=0, lt=0.5)  # the negative-binomial upper bound
    min_cases_4_weeks: int = Field(5, ge=0)  # no alarm under this many in the last 4 weeks


class DailyWarningConfig(Section):
    """The daily early warning: EARS C2 or ESSENCE's EWMA."""

    method: Literal["ears_c2", "ewma"] = "ears_c2"
    baseline_days: int = Field(7, ge=3, le=60)
    guard_days: int = Field(2, ge=0, le=7)
    threshold_sd: float = Field(3.0, gt=0)
    min_sigma: float = Field(0.5, ge=0)
    ewma_baseline_days: int = Field(28, ge=7, le=90)
    ewma_lambdas: list[float] = [0.4, 0.9]
    at: str = Field("07:00", pattern=r"^\d{2}:\d{2}$")  # `hotline serve` runs it daily


class HotspotsConfig(Section):
    """未诉先办: what rose beyond its season, and where (issue 23)."""

    farrington: FarringtonConfig = FarringtonConfig()
    daily: DailyWarningConfig = DailyWarningConfig()
    fdr_q: float = Field(0.05, gt=0, lt=1)  # Benjamini-Hochberg over one run
    min_excess_cases: int = Field(5, ge=0)  # a flag needs at least this many above expected
    min_excess_share: float = Field(0.30, ge=0)  # ... and this share above expected
    levels: list[Literal["district", "township"]] = ["district", "township"]
    run_day: int = Field(3, ge=1, le=28)  # `hotline serve` analyses last month on this day
    stl_period: int = Field(52, ge=4)  # charts only


class TopicsConfig(Section):
    """主要反映: topics per category and month, and a category for IVR tickets."""

    min_df: int = Field(3, ge=1)
    max_df: float = Field(0.5, gt=0, le=1)
    k_min: int = Field(2, ge=1)
    k_max: int = Field(8, ge=2)
    new_topic_cosine: float = Field(0.3, gt=0, lt=1)  # below this to all of 3 months: new
    min_confidence: float = Field(0.6, gt=0, lt=1)  # under this a suggested category waits
    seed: int = 12345


class AccountabilityConfig(Section):
    """谎报瞒报 and 推诿扯皮: evidence to review, never an automatic penalty."""

    repeat_days: int = Field(30, ge=1, le=365)
    min_n: int = Field(20, ge=1)  # a unit with fewer cases in a month is not tested
    fdr_q: float = Field(0.05, gt=0, lt=1)
    bounce_min: int = Field(2, ge=1)  # returned or re-dispatched this often: bounced


class KbConfig(Section):
    """智能知识库: answers for agents first, then for waiting callers."""

    enabled: bool = True
    threshold: float = Field(0.35, ge=0, le=1)  # a match under this is not offered
    offer_top: int = Field(3, ge=1, le=9)  # the season's top entries offered in the queue
    offer_key: str = Field("3", pattern=r"^[0-9*#]$")
    listen_seconds: int = Field(6, ge=2, le=20)  # the caller says the question
    true_deflection_days: int = Field(7, ge=1, le=90)


class DeadlineConfig(Section):
    emergency_working_days: int = Field(1, ge=1)
    daily_life_working_days: int = Field(3, ge=1)
    complex_calendar_days: int = Field(7, ge=1)
    warn_hours_before: int = Field(48, ge=0)
    escalate_hours_before: int = Field(24, ge=0)

    @field_validator("escalate_hours_before")
    @classmethod
    def _within_the_warning(cls, value: int, info: ValidationInfo) -> int:
        # the deadline lists read open tickets from the warning horizon on: an escalation
        # further out than the warning would never be listed before the warning catches up
        warn = info.data.get("warn_hours_before")
        if warn is not None and value > warn:
            raise ValueError(f"must not exceed deadlines.warn_hours_before ({warn})")
        return value


class RobotConfig(Section):
    call_windows: list[CallWindow] = [
        CallWindow(start=time(9, 0), end=time(12, 0)),
        CallWindow(start=time(14, 0), end=time(20, 0)),
    ]
    working_days_only: bool = False
    max_channels: int = Field(10, ge=1)
    calls_per_minute: int = Field(30, ge=1)
    ring_timeout_seconds: int = Field(30, ge=5)
    max_attempts: int = Field(3, ge=1)
    max_attempts_per_day: int = Field(1, ge=1)
    # several tickets of one citizen: spaced calls, at most this many a day to one number
    max_calls_per_citizen_per_day: int = Field(1, ge=1)
    retry_after_minutes: dict[Literal["no_answer", "busy", "failed", "partial"], int] = {
        "no_answer": 120,
        "busy": 30,
        "failed": 60,
        "partial": 240,
    }
    # separate limits: not answered (no answer, busy, failed) vs answered but not finished
    max_unanswered: int = Field(3, ge=0)
    max_partial: int = Field(1, ge=0)
    min_hours_after_close: float = Field(2.0, ge=0)
    # a ticket closed longer ago than this is no longer called back (null: no limit)
    survey_within_days: int | None = Field(30, ge=1)
    caller_id: str = "12345"
    enabled: bool = True  # `hotline serve` runs the robot beside the IVR
    report_minutes: int = Field(60, ge=1)
    answer_timeout_ms: int = Field(5000, ge=1000)
    opt_out_key: str = Field("9", pattern=r"^[0-9*#]$")
    # the robot's own store budget (survey answers, outcomes), then its spool: a survey may
    # wait longer than a caller at the IVR's menu, or less; not the IVR's setting
    db_retry_seconds: float = Field(3.0, gt=0)


class MetricsConfig(Section):
    basic_satisfied_weight: float = Field(1.0, ge=0, le=1)
    composite_weights: dict[Literal["response", "resolution", "satisfaction"], float] = {
        "response": 0.1,
        "resolution": 0.5,
        "satisfaction": 0.4,
    }
    assessment_month_start_day: int = Field(1, ge=1, le=28)
    snail_bottom: int = Field(2, ge=1)  # 蜗牛席: the bottom N of a peer group ...
    snail_months: int = Field(3, ge=1)  # ... for this many assessment months running
    snail_min_group_size: int = Field(3, ge=2)  # smaller peer groups have no bottom
    # a unit with fewer valid callbacks in the period is shown but not ranked (1 = rank all)
    min_valid_callbacks: int = Field(5, ge=1)

    @field_validator("composite_weights")
    @classmethod
    def _all_three_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        missing = {"response", "resolution", "satisfaction"} - set(weights)
        if missing:
            raise ValueError(f"needs a weight for each rate; missing {', '.join(sorted(missing))}")
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights cannot be negative")
        return weights


class RetentionDays(Section):
    """How long personal data is kept, in days (no national rule fixes it: 365 by default)."""

    recordings: int = Field(365, ge=1)
    transcripts: int = Field(365, ge=1)
    cdr: int = Field(365, ge=1)
    logs: int = Field(365, ge=1)


class PrivacyConfig(Section):
    retention_days: RetentionDays = RetentionDays()
    retention_interval_hours: int = Field(24, ge=1)
    # whole caller numbers in log lines: a debugging session only
    log_full_numbers: bool = False


class WebConfig(Section):
    """The HTTP side: the platform's import endpoint (and the supervisors' pages)."""

    host: str = "127.0.0.1"
    port: int = Field(8345, ge=1, le=65535)
    import_token_env: str = "HOTLINE_IMPORT_TOKEN"
    max_import_records: int = Field(50_000, ge=1)  # per request; bigger batches use the CLI
    max_import_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # refused before it is read
    # the supervisors' console: sessions, signed recording links, login throttling
    secret_env: str = "HOTLINE_WEB_SECRET"  # unset: generated once into the state folder
    session_minutes: int = Field(480, ge=5)  # a session ends this long after login
    secure_cookies: bool = False  # True behind HTTPS (production); loopback HTTP in tests
    link_seconds: int = Field(300, ge=10)  # a recording link works this long
    idle_minutes: int = Field(30, ge=1)  # a session without a page request this long ends
    live_recheck_seconds: float = Field(5.0, gt=0, le=60)  # a live stream re-checks its viewer
    # wrong passwords: the first few in a row are free, then each makes the account wait,
    # doubling from login_delay_seconds up to login_delay_max_seconds (`hotline users unlock`)
    login_free_failures: int = Field(5, ge=1)
    login_delay_seconds: int = Field(2, ge=1)
    login_delay_max_seconds: int = Field(60, ge=1)
    address_failures_per_hour: int = Field(50, ge=5)  # per client address, any account
    # X-Forwarded-For is believed only from these peers (addresses or networks); none: never
    trusted_proxies: list[str] = []
    # roles outside numbers_visible_to search by caller with a whole number only, audited
    caller_searches_per_minute: int = Field(5, ge=1)  # per user
    caller_searches_per_day: int = Field(100, ge=1)  # per user
    numbers_visible_to: list[Literal["admin", "supervisor", "staff"]] = ["supervisor"]
    # roles that open recordings at all (the recordings search, a call's page, its audio);
    # admins manage accounts and read the audit log, and listen only when listed here
    recording_roles: list[Literal["admin", "supervisor", "staff"]] = ["supervisor", "staff"]
    # of those, the roles that may save a whole recording (a download link, audited as a
    # download); the others' player gets the audio in pieces of at most stream_piece_kb
    download_roles: list[Literal["admin", "supervisor", "staff"]] = ["supervisor"]
    stream_piece_kb: int = Field(64, ge=4, le=4096)
    # Host names a request may carry besides the loopback names and `host`; another Host
    # answers 400 (a wildcard only as "*.example.org"; "*" turns the check off)
    allowed_hosts: list[str] = []
    page_workers: int = Field(4, ge=1, le=64)  # threads for pages and exports (never the AGI loop)
    # a console request's database work is cancelled after this long (503), so no page holds
    # one of the page_workers for good (SQLite: progress handler; PostgreSQL: statement_timeout)
    request_seconds: float = Field(60.0, gt=0, le=3600)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or a network (10.0.0.5, 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        for item in value:
            name = item.strip().lower()
            wild = name.startswith("*.") or name == "*"
            if not name or "*" in (name[2:] if wild else name) or "/" in name or " " in name:
                raise ValueError(
                    f"{item!r} is not a host name (console.example.org, *.example.org, 10.0.0.5)"
                )
        return [item.strip().lower() for item in value]

    def hosts(self) -> list[str]:
        """Every Host a console request may name: loopback, `host` (unless it listens on
        every address), and `allowed_hosts`."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        own = self.host.strip().lower()
        if own and own not in ("0.0.0.0", "::", "[::]"):
            names.append(f"[{own.strip('[]')}]" if ":" in own else own)
        return list(dict.fromkeys([*names, *self.allowed_hosts]))

    def import_token(self) -> str | None:
        """The bearer token the platform must send; None keeps the endpoint closed."""
        return os.environ.get(self.import_token_env) or None


class HealthConfig(Section):
    """Operators' checks (`/healthz`, `/metrics`) and the disk and log limits (issue 11)."""

    # `hotline serve` answers /healthz and /metrics here only, never on the console's port;
    # keep it on loopback (a scraper on the host, or an SSH tunnel); None: not served
    host: str = "127.0.0.1"
    port: int | None = Field(8346, ge=1, le=65535)
    # the checks that ask the store (a write, the robot's heartbeat) are made at most this
    # often, however many ask; the others (links, spools, disk, web) are read each time
    cache_seconds: float = Field(5.0, ge=0, le=300)
    # /healthz is unhealthy, and a warning is logged, below this much free recordings disk
    min_free_disk_mb: int = Field(1024, ge=0)
    disk_check_seconds: int = Field(60, ge=5)
    # log file of `hotline serve` / `robot run` (relative: to the state folder); None: stderr
    log_file: Path | None = Path("log/hotline.log")
    log_max_mb: int = Field(50, ge=1)
    log_backups: int = Field(10, ge=1)


class ClusterFrontConfig(Section):
    """Kamailio, the one SIP address callers, phones and agents use (issue 22)."""

    address: str = "127.0.0.10"
    sip_port: int = Field(5060, ge=1, le=65535)  # UDP and TCP
    ws_port: int = Field(8080, ge=1, le=65535)  # SIP over WebSocket: the agents' browser phones
    # ds_select_dst: 10 sends a call to the node with the fewest calls, 4 takes turns
    algorithm: Literal[4, 10] = 10
    # OPTIONS to every node this often, whatever its state (ds_probing_mode 1) ...
    probing_interval_seconds: int = Field(1, ge=1, le=60)
    # ... and this many unanswered in a row take it out of rotation
    probing_threshold: int = Field(2, ge=1, le=10)
    # a request with no reply at all is given up this soon (tm fr_timer): an INVITE to a dead
    # node fails over to the next one after it, and a ping to it counts as lost
    fr_timer_ms: int = Field(1000, ge=100, le=2000)
    # a ringing call (a provisional reply came) is given up after this (tm fr_inv_timer)
    fr_inv_timer_ms: int = Field(60000, ge=5000, le=300_000)
    # only phones from this network may register (agents' and test phones)
    phones_network: str = "127.0.0.0/8"

    @field_validator("phones_network")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a network, e.g. 10.0.0.0/8") from None
        return value


class ClusterNode(Section):
    """One Asterisk media node: its own address, ports, RTP range and AMI."""

    # asterisk.conf systemname: the node's Uniqueids read ast1-1700000000.12
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
    address: str
    sip_port: int = Field(5060, ge=1, le=65535)
    ami_port: int = Field(5038, ge=1, le=65535)
    rtp_start: int = Field(ge=1024, le=65535)
    rtp_end: int = Field(ge=1024, le=65535)
    # the node's own HAProxy listens here for its FastAGI requests
    agi_port: int = Field(4573, ge=1, le=65535)

    @field_validator("rtp_end")
    @classmethod
    def _above_rtp_start(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("rtp_start")
        if start is not None and value <= start:
            raise ValueError(f"must be above rtp_start ({start})")
        return value


class ClusterWorker(Section):
    """One stateless FastAGI worker (`hotline serve` on its own address)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
    address: str
    agi_port: int = Field(4573, ge=1, le=65535)
    health_port: int = Field(8346, ge=1, le=65535)  # its /healthz: HAProxy's check


class ClusterJobs(Section):
    """The job workers beside the call path."""

    robots: int = Field(1, ge=0, le=32)  # callback robots (one AMI client per node each)
    transcribers: int = Field(1, ge=0, le=64)
    # a job worker silent this long is dead and its jobs go back in the queue (workers beat
    # four times within it, and the recovery looks twice)
    stalled_seconds: float = Field(20.0, ge=2.0, le=3600.0)


class ClusterRobot(Section):
    # the robot's calls on one node at once (the whole cluster's cap stays robot.max_channels)
    max_channels_per_node: int = Field(10, ge=1)


DEFAULT_NODES = [
    ClusterNode(name="ast1", address="127.0.0.11", rtp_start=10000, rtp_end=14999),
    ClusterNode(name="ast2", address="127.0.0.12", rtp_start=15000, rtp_end=19999),
]
DEFAULT_WORKERS = [
    ClusterWorker(name="agi1", address="127.0.0.21"),
    ClusterWorker(name="agi2", address="127.0.0.22"),
]


class ClusterConfig(Section):
    """Scale-out (issue 22): Kamailio, N Asterisk nodes, M FastAGI workers, one PostgreSQL.

    Absent from config.yaml, the hotline runs on one box as before.
    """

    front: ClusterFrontConfig = ClusterFrontConfig()
    nodes: list[ClusterNode] = DEFAULT_NODES
    workers: list[ClusterWorker] = DEFAULT_WORKERS
    database_url: str = "postgresql+psycopg://hotline@127.0.0.30:5432/hotline"
    # finished recordings are shipped here from the nodes' disks (NFS; a folder on one box)
    recordings_store: Path = Path("var/cluster/recordings")
    jobs: ClusterJobs = ClusterJobs()
    robot: ClusterRobot = ClusterRobot()
    # a node whose AMI is down and that Kamailio marks inactive this long is lost: its
    # attempts in flight are settled once (partial or failed "node lost"), never re-sent
    node_lost_grace_seconds: int = Field(10, ge=1, le=600)
    # the node daemon: a recording unchanged this long, its channel gone, is shipped ...
    ship_settle_seconds: float = Field(10.0, ge=1.0, le=600.0)
    # ... and it looks for call records and finished recordings this often
    ship_interval_seconds: float = Field(3.0, ge=0.5, le=300.0)
    # every node's AMI answers the robots, FastAGI workers, node daemons and the console from
    # these networks only (manager.conf permit); on one box loopback is all of them
    ami_permit: list[ipaddress.IPv4Network] = [ipaddress.IPv4Network("127.0.0.0/8")]

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a PostgreSQL URL (postgresql+psycopg://user@host/db)")
        return value

    @model_validator(mode="after")
    def _hosts_apart(self) -> ClusterConfig:
        hosts = [("front.address", self.front.address)]
        hosts += [(f"nodes.{i}.address", n.address) for i, n in enumerate(self.nodes)]
        hosts += [(f"workers.{i}.address", w.address) for i, w in enumerate(self.workers)]
        for field, address in hosts:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise _rule(field, address, "not an IP address (127.0.0.11, 10.0.0.11)") from None
        if not self.nodes or not self.workers:
            raise _rule("nodes" if not self.nodes else "workers", [], "at least one")
        _unique(self.nodes, "nodes", "name")
        _unique(self.workers, "workers", "name")
        names = [n.name for n in self.nodes]
        for i, worker in enumerate(self.workers):
            if worker.name in names:
                raise _rule(f"workers.{i}.name", worker.name, "a node has this name")
        # one address per host: on one box each listens on its own 127.0.0.x, same ports
        seen: dict[str, str] = {}
        for field, address in hosts:
            if address in seen:
                raise _rule(field, address, f"{seen[address]} has this address (one per host)")
            seen[address] = field
        _rtp_apart(self.nodes)
        return self


def _rule(field: str, value: object, message: str) -> PydanticCustomError:
    """A cluster rule's error, reported at the field it names (config_rule)."""
    return PydanticCustomError(RULE_ERROR, message, {"field": field, "value": value})


def _unique(items: list[ClusterNode] | list[ClusterWorker], where: str, key: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise _rule(f"{where}.{i}.{key}", value, f"each {key} once among {where}")
        seen.add(value)


def _rtp_apart(nodes: list[ClusterNode]) -> None:
    """Nodes' RTP ranges never overlap: on one box two nodes would fight for a port."""
    for i, node in enumerate(nodes):
        for other in nodes[:i]:
            if node.rtp_start <= other.rtp_end and other.rtp_start <= node.rtp_end:
                raise _rule(
                    f"nodes.{i}.rtp_start",
                    f"{node.rtp_start}-{node.rtp_end}",
                    f"overlaps {other.name}'s RTP range {other.rtp_start}-{other.rtp_end}",
                )


DEFAULT_LINES = [
    LineConfig(did="12345", name="12345政务服务便民热线", greeting="greeting_main"),
    LineConfig(
        did="12345001",
        name="为企服务专线",
        greeting="greeting_enterprise",
        default_category="营商环境",
    ),
    LineConfig(
        did="12345002",
        name="重点项目代办帮办专线",
        greeting="greeting_key_project",
        default_category="重点项目",
    ),
    LineConfig(
        did="12345003",
        name="政务失信投诉专线",
        greeting="greeting_credit",
        default_category="政务诚信",
    ),
    LineConfig(
        did="12345004",
        name="医保服务专线",
        greeting="greeting_medical_insurance",
        default_category="医疗保障",
    ),
]


class HotlineConfig(Section):
    timezone: str = "Asia/Shanghai"
    database: DatabaseConfig = DatabaseConfig()
    paths: PathsConfig = PathsConfig()
    asterisk: AsteriskConfig = AsteriskConfig()
    agi: AgiConfig = AgiConfig()
    ivr: IvrConfig = IvrConfig()
    speech: SpeechConfig = SpeechConfig()
    prompts: PromptsConfig = PromptsConfig()
    lines: list[LineConfig] = DEFAULT_LINES
    queues: list[QueueConfig] = [
        QueueConfig(name="hotline-agents"),
        QueueConfig(name="hotline-agents-en", language="en"),
    ]
    agents: AgentsConfig = AgentsConfig()
    callback: CallbackConfig = CallbackConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    deadlines: DeadlineConfig = DeadlineConfig()
    robot: RobotConfig = RobotConfig()
    metrics: MetricsConfig = MetricsConfig()
    web: WebConfig = WebConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    health: HealthConfig = HealthConfig()
    hotspots: HotspotsConfig = HotspotsConfig()
    topics: TopicsConfig = TopicsConfig()
    accountability: AccountabilityConfig = AccountabilityConfig()
    kb: KbConfig = KbConfig()
    # scale-out (issue 22): Kamailio, Asterisk nodes, FastAGI workers; None: one box
    cluster: ClusterConfig | None = None
    # Where the file was read from: relative paths in it are relative to its folder.
    source: Path = Path(DEFAULT_CONFIG_NAME)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("lines")
    @classmethod
    def _unique_dids(cls, lines: list[LineConfig]) -> list[LineConfig]:
        dids = [line.did for line in lines]
        duplicates = sorted({d for d in dids if dids.count(d) > 1})
        if duplicates:
            raise ValueError(f"each DID may appear once; repeated: {', '.join(duplicates)}")
        prompts = prompt_ids(PROMPT_CATALOG)
        for index, line in enumerate(lines):
            if line.greeting not in prompts:
                raise PydanticCustomError(
                    RULE_ERROR,
                    f"no such prompt in {PROMPT_CATALOG} (add it there, or use one of its "
                    "greeting_* prompts)",
                    {"field": f"{index}.greeting", "value": line.greeting},
                )
        return lines

    @model_validator(mode="after")
    def _queues_known(self) -> HotlineConfig:
        names = [queue.name for queue in self.queues]
        if len(set(names)) != len(names) or not names:
            raise PydanticCustomError(
                RULE_ERROR,
                "at least one queue, each name once",
                {"field": "queues", "value": names},
            )
        for index, line in enumerate(self.lines):
            if line.queue not in names:
                raise PydanticCustomError(
                    RULE_ERROR,
                    f"names no queue of `queues` ({', '.join(names)})",
                    {"field": f"lines.{index}.queue", "value": line.queue},
                )
        return self

    def queue(self, name: str) -> QueueConfig:
        """The queue called name (validated to exist for every line)."""
        return next(queue for queue in self.queues if queue.name == name)

    def language_queue(self, line: LineConfig, lang: str) -> QueueConfig:
        """The line's queue, or the first queue whose agents speak lang (a language seat)."""
        own = self.queue(line.queue)
        if own.language == lang:
            return own
        return next((q for q in self.queues if q.language == lang), own)

    @property
    def base_dir(self) -> Path:
        """The folder that relative paths in the config are resolved against."""
        return self.source.resolve().parent

    def path(self, value: Path) -> Path:
        """Resolve a configured path: `~` expanded, relative to the config's folder."""
        expanded = value.expanduser()
        return expanded if expanded.is_absolute() else (self.base_dir / expanded)

    @property
    def state_dir(self) -> Path:
        return self.path(self.paths.state_dir)

    @property
    def recordings_dir(self) -> Path:
        return self.path(self.paths.recordings_dir)

    @property
    def sounds_dir(self) -> Path:
        return self.path(self.paths.sounds_dir)

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool" / "tickets"

    @property
    def robot_spool_dir(self) -> Path:
        """Survey answers and attempt outcomes that waited for the database (issue 11)."""
        return self.state_dir / "spool" / "robot"

    @property
    def queue_log(self) -> Path:
        """Asterisk's queue_log (logger.conf): the local one unless asterisk.queue_log says."""
        if self.asterisk.queue_log is not None:
            return self.path(self.asterisk.queue_log)
        return self.state_dir / "asterisk" / "log" / "queue_log"

    @property
    def cdr_csv(self) -> Path:
        csv_path = self.asterisk.cdr_csv
        if csv_path is not None:
            return self.path(csv_path)
        return self.state_dir / "asterisk" / "log" / "cdr-csv" / "Master.csv"

    @property
    def speech_model(self) -> Path | None:
        model = self.speech.model_path
        return None if model is None else self.path(model)

    @property
    def cache_dir(self) -> Path:
        return self.path(self.paths.cache_dir)

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the config's folder."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(self.base_dir / url[len(prefix) :])
        return url

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def warnings(self) -> list[str]:
        """What is valid but unsafe for a production site, one line each."""
        exposed = [
            f"{name} {host}"
            for name, host in (
                ("asterisk.ami.host", self.asterisk.ami.host),
                ("asterisk.sip.bind", self.asterisk.sip.bind),
                ("agi.host", self.agi.host),
                ("web.host", self.web.host),
                ("health.host", self.health.host),
            )
            if not is_loopback(host)
        ]
        found = []
        if exposed and self.asterisk.include_simulators:
            found.append(
                f"{self.source}: asterisk.include_simulators is true while "
                f"{', '.join(exposed)} is not loopback: scripted citizens and the tests' AMI "
                "user are loaded; set asterisk.include_simulators: false in production"
            )
        if self.health.port is not None and not is_loopback(self.health.host):
            found.append(
                f"{self.source}: health.host {self.health.host} is not loopback: /healthz and "
                "/metrics (the hotline's state and call volumes) answer anyone who reaches it"
            )
        if self.privacy.log_full_numbers:
            found.append(
                f"{self.source}: privacy.log_full_numbers is true: log lines carry citizens' "
                "whole numbers (a debugging session only)"
            )
        return found

    # -- secrets: from the environment, else generated once per installation ----------
    @property
    def secrets(self) -> SecretStore:
        return SecretStore(self.state_dir / "secrets")

    def ami_secret(self) -> str:
        """The robot's AMI password."""
        return self.secrets.get("ami", self.asterisk.ami.secret_env)

    def ami_test_secret(self) -> str:
        """The tests' AMI password (its user exists only with simulators)."""
        return self.secrets.get("ami-test")

    def phone_secret(self, user: str) -> str:
        """One SIP phone's password."""
        return self.secrets.get(f"phone-{user}", f"{self.asterisk.sip.phone_secret_env}_{user}")

    def agent_sip_key(self) -> str:
        """The key every agent seat's SIP password is derived from (`agents.seat_secret`)."""
        return self.secrets.get("agent-sip", self.agents.sip_secret_env)

    def agi_key(self) -> str:
        """The key Asterisk's dialplan sends with every FastAGI request."""
        return self.secrets.get("agi-key", self.agi.key_env)

    def ticket_code_secret(self) -> str:
        """The key of tickets' verification codes: $ivr.ticket_code_secret_env, else kept here.

        Two FastAGI hosts must set the variable alike: a code read out by one
        must open the ticket on the other.
        """
        return self.secrets.get("ticket-codes", self.ivr.ticket_code_secret_env)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_config_file(explicit: Path | None = None) -> Path:
    """The config file to use: explicit path, then $HOTLINE_CONFIG, then ./config.yaml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return Path(DEFAULT_CONFIG_NAME)


@functools.cache
def _prompt_ids(path: Path, stamp: int) -> frozenset[str]:
    """The catalog's prompt ids (read once per version of the file)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the prompt catalog {path}: {exc}") from None
    return frozenset(str(key) for key in data) if isinstance(data, dict) else frozenset()


def prompt_ids(path: Path) -> frozenset[str]:
    """The prompt ids of the catalog at `path`; ValueError when it cannot be read."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(f"cannot read the prompt catalog {path}: {exc.strerror}") from None
    return _prompt_ids(path, stamp)


def _describe(error: dict, data: object) -> str:
    """One readable phrase for a pydantic error, with the offending value."""
    loc = list(error["loc"])
    if error["type"] == RULE_ERROR:  # a rule checked on a list names the item's field
        loc += str(error["ctx"]["field"]).split(".")
        error = {**error, "input": error["ctx"]["value"]}
    field = ".".join(str(part) for part in loc) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see config.yaml for the known ones)"
    if error["type"] == "literal_error":
        message = "must be one of " + error["ctx"]["expected"]
    value = error.get("input")
    shown = (
        "" if isinstance(value, dict | list) or error["type"] == "missing" else f" (got {value!r})"
    )
    return f"{field}: {message}{shown}"


def load_config(path: Path | None = None) -> HotlineConfig:
    """Read and validate the config file; raise ConfigError with a one-line reason."""
    config_file = find_config_file(path)
    if not config_file.exists():
        if path is None and os.environ.get(CONFIG_ENV) is None:
            return HotlineConfig(source=config_file)
        raise ConfigError(f"{config_file}: no such config file (set {CONFIG_ENV} or --config)")
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{config_file}: not valid YAML{where}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config_file}: the top level must be a mapping of sections")
    try:
        return HotlineConfig(**{**data, "source": config_file})
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{config_file}: {_describe(first, data)}{suffix}") from None
