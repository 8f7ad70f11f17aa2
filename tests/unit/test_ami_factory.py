"""The one AMI client factory (`links.ami`): every `asterisk.ami` setting reaches the client.

The robot, the console's live calls and `hotline serve` all build their link with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from links.ami import ami_client
from tests.support.config import write_config


def test_every_ami_setting_and_the_secret_reach_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_FACTORY_AMI", "s3cret")
    ami = {
        "host": "127.0.0.2",
        "port": 5039,
        "username": "robot",
        "secret_env": "HOTLINE_FACTORY_AMI",
        "connect_timeout": 2.5,
        "reconnect_max_delay": 7.0,
    }
    client = ami_client(load_config(write_config(tmp_path, asterisk={"ami": ami})))
    assert (client.host, client.port, client.username) == ("127.0.0.2", 5039, "robot")
    assert (client.connect_timeout, client.reconnect_max_delay) == (2.5, 7.0)
    assert client._secret == "s3cret"
    assert client._secret_hint == "HOTLINE_FACTORY_AMI"  # named when a login is refused
    assert not client.connected.is_set()  # built, not connected
