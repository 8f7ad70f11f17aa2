"""Asterisk's call ids of one box (1700000000.12) and of a named node (ast1-1700000000.12).

Issue 22's distinct nodes: every reader of a Uniqueid — recording names, queue_log,
the CDR, the three-way room, the config and the rendered asterisk.conf — takes both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.conference import ThreeWayError, room_of
from agents.queue_log import parse_line
from callback_robot.cdr import CdrReader
from core.config import ConfigError, load_config
from core.uniqueid import is_systemname, is_uniqueid, node_of, number_of
from ivr import recordings
from ivr.store import CallStart, sip_call_id_of
from tests.support.config import write_config
from tools.local_asterisk.render import AsteriskLayout, render


@pytest.mark.parametrize(
    ("uniqueid", "node", "number"),
    [
        ("1700000000.12", None, "1700000000.12"),
        ("ast1-1700000000.12", "ast1", "1700000000.12"),
        ("node_B7-1700000000.3", "node_B7", "1700000000.3"),
    ],
)
def test_both_forms_are_uniqueids_with_their_node(
    uniqueid: str, node: str | None, number: str
) -> None:
    assert is_uniqueid(uniqueid)
    assert node_of(uniqueid) == node
    assert number_of(uniqueid) == number


@pytest.mark.parametrize(
    "value",
    ["", "1700000000", "ast1-", "-1700000000.12", "1ast-1700000000.12", "a-b-1.2", "callback-3-1"],
)
def test_what_is_not_a_uniqueid_has_no_node(value: str) -> None:
    assert not is_uniqueid(value)
    assert node_of(value) is None and number_of(value) is None


def test_a_systemname_is_a_letter_then_letters_digits_or_underscores() -> None:
    assert all(is_systemname(n) for n in ("ast1", "a", "Node_2", "a" * 32))
    for bad in ("", "1ast", "ast-1", "ast.1", "ast 1", "节点1", "a" * 33, "callback", "attempt"):
        assert not is_systemname(bad), bad


@pytest.mark.parametrize("prefix", ["", "ast1-"])
def test_recording_names_of_both_forms_carry_call_line_and_caller(
    tmp_path: Path, prefix: str
) -> None:
    parsed = recordings.parse(tmp_path / f"{prefix}1700000000.12_12345_13800000000.wav")
    assert parsed is not None
    assert (parsed.uniqueid, parsed.did, parsed.caller, parsed.is_request) == (
        f"{prefix}1700000000.12",
        "12345",
        "13800000000",
        False,
    )
    assert parsed.node == (prefix[:-1] or None)
    request = recordings.parse(tmp_path / f"{prefix}1700000000.12_12345_13800000000-request.wav")
    assert request is not None and request.is_request and request.uniqueid == parsed.uniqueid


def test_names_that_only_look_like_a_node_are_not_recordings(tmp_path: Path) -> None:
    for name in (
        "ast-1-1700000000.12_12345_1.wav",  # a node name has no "-"
        "1ast-1700000000.12_12345_1.wav",  # starts with a digit
        "ast1-_12345_1.wav",
        "ast1-1700000000.12_attempt3.wav",  # the survey's own recordings are not the IVR's
    ):
        assert recordings.parse(tmp_path / name) is None, name


def test_a_recording_scan_finds_both_nodes_calls_apart(tmp_path: Path) -> None:
    for name in (
        "ast1-1700000000.12_12345_13800000001.wav",
        "ast2-1700000000.12_12345_13800000002.wav",
    ):
        (tmp_path / name).write_bytes(b"")
    found = recordings.scan(tmp_path)
    assert [(r.uniqueid, r.node, r.caller) for r in found] == [
        ("ast1-1700000000.12", "ast1", "13800000001"),
        ("ast2-1700000000.12", "ast2", "13800000002"),
    ]


def test_queue_log_keeps_a_node_prefixed_callid_whole() -> None:
    event = parse_line("1796430000|ast2-1796429990.12|hotline-agents|wang|CONNECT|7|ast2-1.13|2")
    assert event is not None
    assert (event.callid, event.event, event.field(2)) == (
        "ast2-1796429990.12",
        "CONNECT",
        "ast2-1.13",
    )
    assert node_of(event.callid) == "ast2"


def test_the_cdr_reader_finds_attempts_on_a_named_node(tmp_path: Path) -> None:
    def row(uniqueid: str, attempt: int, disposition: str) -> str:
        fields = ['""'] * 14 + [f'"{disposition}"', '"DOCUMENTATION"', f'"{uniqueid}"']
        return ",".join([*fields, f'"attempt-{attempt}"']) + "\n"

    master = tmp_path / "Master.csv"
    master.write_text(row("1700000000.1", 1, "BUSY") + row("ast1-1700000000.1", 2, "NO ANSWER"))
    assert CdrReader(master).dispositions() == {1: "BUSY", 2: "NO ANSWER"}


def test_a_three_way_room_is_letters_and_digits_in_both_forms() -> None:
    assert room_of("1764897600.12") == "c1764897600x12"
    assert room_of("ast1-1764897600.12") == "c1764897600x12"  # rooms live on one node
    with pytest.raises(ThreeWayError):
        room_of("ast1-x")


def test_the_sip_call_id_is_kept_only_when_it_is_one() -> None:
    assert sip_call_id_of("3c2a5f-9b@10.0.0.1 ") == "3c2a5f-9b@10.0.0.1"
    assert sip_call_id_of("") is None  # a Local channel has none
    assert sip_call_id_of("two words") is None
    assert sip_call_id_of("x" * 201) is None


def test_a_spooled_call_start_from_before_the_call_id_still_applies() -> None:
    start = CallStart.from_payload(
        {
            "uniqueid": "1700000000.12",
            "caller": "13800000000",
            "did": "12345",
            "recording": None,
            "linkedid": "1700000000.12",
            "started_at": "2026-11-25T03:00:00+00:00",
        }
    )
    assert start.sip_call_id is None and start.uniqueid == "1700000000.12"


def test_systemname_is_checked_where_the_config_is_read(tmp_path: Path) -> None:
    assert (
        load_config(
            write_config(tmp_path / "a", asterisk={"systemname": "ast2"})
        ).asterisk.systemname
        == "ast2"
    )
    with pytest.raises(ConfigError, match="systemname"):
        load_config(write_config(tmp_path / "b", asterisk={"systemname": "ast-2"}))


@pytest.mark.parametrize(("systemname", "line"), [("ast1", "systemname = ast1"), (None, None)])
def test_asterisk_conf_names_the_node_only_when_it_has_a_name(
    tmp_path: Path, systemname: str | None, line: str | None
) -> None:
    config = load_config(write_config(tmp_path, asterisk={"systemname": systemname}))
    out = tmp_path / "etc"
    layout = AsteriskLayout(out, out / "state", out / "run", Path("/usr/lib/asterisk/modules"))
    files = {path.name: path.read_text() for path in render(config, layout, out)}
    options = files["asterisk.conf"].split("[options]", 1)[1]
    settings = [s.strip() for s in options.splitlines() if s.startswith("systemname")]
    assert settings == ([line] if line else [])
