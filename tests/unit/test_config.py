"""Configuration: defaults that work, and one clear line for every mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.secrets import SecretError
from tests.support.config import write_config

PROJECT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT,
        check=False,
    )


def test_shipped_config_is_valid_and_anchors_paths_at_its_folder() -> None:
    cfg = load_config(PROJECT / "config.yaml")
    assert cfg.database_url == f"sqlite:///{PROJECT}/var/hotline.db"
    assert cfg.recordings_dir == PROJECT / "var" / "recordings"
    assert cfg.lines[0].did == "12345"
    assert cfg.tz.key == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "asterisk:\n  ami:\n    port: 70000\n",
            "asterisk.ami.port: Input should be less than or equal to 65535 (got 70000)",
        ),
        ("asterisk:\n  ami:\n    prot: 5038\n", "asterisk.ami.prot: unknown field"),
        ("timezone: Mars/Olympus\n", "timezone: Value error, must be an IANA time zone"),
        (
            "asterisk:\n  mode: docker\n",
            "asterisk.mode: must be one of 'auto', 'system' or 'chroot' (got 'docker')",
        ),
        (
            "asterisk:\n  outbound_channel: PJSIP/trunk\n",
            "asterisk.outbound_channel: Value error, must contain the placeholder {number}",
        ),
        (
            "lines:\n  - {did: '12345', name: a, greeting: g}\n  - {did: '12345', name: b, greeting: g}\n",
            "lines: Value error, each DID may appear once; repeated: 12345",
        ),
        ("deadlines: [1, 2]\n", "deadlines: Input should be a valid dictionary"),
        (
            "metrics:\n  composite_weights: {response: 0.5, resolution: 0.5}\n",
            "metrics.composite_weights: Value error, needs a weight for each rate; missing satisfaction",
        ),
        (
            "metrics:\n  basic_satisfied_weight: 1.5\n",
            "metrics.basic_satisfied_weight: Input should be less than or equal to 1 (got 1.5)",
        ),
        ("web:\n  port: 0\n", "web.port: Input should be greater than or equal to 1 (got 0)"),
        (
            "ivr:\n  db_retry_seconds: 0\n",
            "ivr.db_retry_seconds: Input should be greater than 0 (got 0)",
        ),
        ("ivr:\n  store_process: maybe\n", "ivr.store_process: Input should be a valid boolean"),
        ("asterisk: {ami: {port: 1\n", "not valid YAML at line"),
    ],
)
def test_bad_field_gives_one_line_naming_file_and_field(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_cli_reports_a_bad_config_in_one_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("agi:\n  port: -1\n")
    done = run_cli("check-config", "--config", str(path))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{path}: agi.port: Input should be greater than or equal to 1 (got -1)" in lines[0]


def test_hotline_config_environment_variable_selects_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("database:\n  url: sqlite:///elsewhere.db\n")
    import os

    done = run_cli("check-config", env={**os.environ, "HOTLINE_CONFIG": str(path)})
    assert done.returncode == 0, done.stderr
    assert f"sqlite:///{tmp_path}/elsewhere.db" in done.stdout


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")


def test_secrets_come_from_the_environment_or_are_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(write_config(tmp_path))
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    generated = cfg.ami_secret()
    assert len(generated) >= 24 and generated != "local-only-not-a-secret"
    kept = cfg.state_dir / "secrets" / "ami"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert (cfg.state_dir / "secrets").stat().st_mode & 0o777 == 0o700
    assert cfg.ami_secret() == generated  # every command reads the same one
    other = load_config(write_config(tmp_path / "other"))
    assert other.ami_secret() != generated  # no two installations share one
    assert cfg.phone_secret("6001") != cfg.phone_secret("6002")  # one per phone
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "s3cret-from-the-environment")
    assert cfg.ami_secret() == "s3cret-from-the-environment"


@pytest.mark.parametrize("bad", ["abc;def", "abc\ndef", " padded ", ""])
def test_a_secret_asterisk_cannot_hold_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    cfg = load_config(write_config(tmp_path))
    monkeypatch.setenv("HOTLINE_AMI_SECRET", bad)
    with pytest.raises(SecretError, match=r"\$HOTLINE_AMI_SECRET"):
        cfg.ami_secret()
