"""`hotline asterisk up | down | status` as an administrator uses them (own instance)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_config
from tests.support.config import write_config
from tools.local_asterisk.local import LocalAsterisk, is_mounted
from tools.local_asterisk.provision import find_install

pytestmark = pytest.mark.usefixtures("asterisk_install")  # each test starts its own


def hotline(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def asterisk_processes(config: Path) -> list[str]:
    conf = str(load_config(config).state_dir / "asterisk" / "etc" / "asterisk.conf").encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if conf in cmdline.split(b"\0") and state != "Z":
            found.append(proc.name)
    return found


def test_up_twice_status_rx_and_down_leaves_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = hotline(config, "asterisk", "up")
    assert first.returncode == 0, first.stderr
    assert "Asterisk running (pid" in first.stdout
    assert "logs:" in first.stdout and "recordings:" in first.stdout
    second = hotline(config, "asterisk", "up")  # idempotent: same process, no second one
    assert second.returncode == 0, second.stderr
    assert (
        first.stdout.split("pid ")[1].split(")")[0] == second.stdout.split("pid ")[1].split(")")[0]
    )
    assert len(asterisk_processes(config)) == 1

    status = hotline(config, "asterisk", "status")
    assert status.returncode == 0
    assert "Asterisk 22." in status.stdout
    assert "System uptime" in status.stdout and "active channels" in status.stdout
    rx = hotline(config, "asterisk", "rx", "dialplan show hotline-diag")
    assert "echo" in rx.stdout

    down = hotline(config, "asterisk", "down")
    assert down.returncode == 0 and "Asterisk stopped" in down.stdout
    assert asterisk_processes(config) == []
    cfg = load_config(config)
    install = find_install(cfg)
    assert install is not None
    if install.root is not None:
        assert not is_mounted(install.host_path(cfg.state_dir.resolve()))
    assert hotline(config, "asterisk", "status").returncode == 1
    assert "not running" in hotline(config, "asterisk", "down").stdout


def test_port_already_taken_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = write_config(tmp_path, asterisk={"ami": {"port": port}})
        done = hotline(config, "asterisk", "up")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"asterisk.ami.port: 127.0.0.1:{port}/TCP is already in use" in lines[0]
    assert asterisk_processes(config) == []


def test_down_never_stops_an_asterisk_it_did_not_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    local = LocalAsterisk(load_config(config))
    local.pidfile.parent.mkdir(parents=True)
    decoy = subprocess.Popen(["sleep", "30"])
    try:
        local.pidfile.write_text(f"{decoy.pid}\n")  # a pid that is not our Asterisk
        assert local.running_pid() is None
        assert "not running" in hotline(config, "asterisk", "down").stdout
        assert decoy.poll() is None
    finally:
        decoy.kill()
