"""telephony.kamailio: the front's node states read from real `kamcmd dispatcher.list` output.

The two transcripts in tests/data/kamailio were captured from Kamailio 5.6
running a rendered kamailio.cfg (tools/cluster): one with both nodes silent
(inactive and probing), one with a node set active and the other disabled by
`dispatcher.set_state`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.kamailio import (
    FrontNode,
    KamailioRefused,
    KamailioUnreachable,
    dispatcher_list,
    kamcmd,
    parse_dispatcher_list,
    parse_uri,
    set_node_state,
)
from tests.support.programs import installed

DATA = Path(__file__).parents[1] / "data" / "kamailio"


def transcript(name: str) -> str:
    return (DATA / f"dispatcher_list_{name}.txt").read_text(encoding="utf-8")


def test_silent_nodes_are_inactive_and_probed() -> None:
    nodes = parse_dispatcher_list(transcript("probing"))
    assert [(n.duid, n.address, n.port) for n in nodes] == [
        ("ast2", "127.0.0.112", 5060),
        ("ast1", "127.0.0.111", 5060),
    ]
    assert all(not n.active and n.probing and n.state == "inactive" for n in nodes)


def test_an_active_node_and_a_disabled_one() -> None:
    by_name = {n.duid: n for n in parse_dispatcher_list(transcript("active_disabled"))}
    assert by_name["ast1"] == FrontNode(
        uri="sip:127.0.0.111:5060",
        address="127.0.0.111",
        port=5060,
        active=True,
        probing=False,
        flags="AX",
        duid="ast1",
        load=0,
    )
    assert by_name["ast2"].state == "disabled"
    assert not by_name["ast2"].active and not by_name["ast2"].probing


def test_an_empty_answer_has_no_nodes() -> None:
    assert parse_dispatcher_list("{\n\tNRSETS: 0\n\tRECORDS: {\n\t}\n}\n") == []


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:127.0.0.11:5060", ("127.0.0.11", 5060)),
        ("sip:127.0.0.11", ("127.0.0.11", 5060)),
        ("sip:node@10.0.0.5:5080;transport=tcp", ("10.0.0.5", 5080)),
        ("sip:[::1]:5062", ("::1", 5062)),
    ],
)
def test_uris(uri: str, expected: tuple[str, int]) -> None:
    assert parse_uri(uri) == expected


def test_no_front_is_unreachable_with_the_socket_named(tmp_path: Path) -> None:
    installed("kamailio")
    ctl = f"unix:{tmp_path}/kamailio_ctl"
    with pytest.raises(KamailioUnreachable, match="kamailio_ctl"):
        dispatcher_list(ctl)
    with pytest.raises(KamailioUnreachable):
        set_node_state(ctl, "sip:127.0.0.111:5060", "disabled")


def test_an_rpc_error_is_not_taken_for_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kamcmd exits 0 and prints the RPC's error on stdout: a stand-in does the same
    fake = tmp_path / "kamcmd"
    fake.write_text("#!/bin/sh\necho 'error: 500 - State Update Failed'\n")
    fake.chmod(0o755)
    monkeypatch.setattr("telephony.kamailio.kamcmd_program", lambda: str(fake))
    with pytest.raises(KamailioRefused, match="State Update Failed"):
        kamcmd("unix:/nowhere", "dispatcher.set_state", "d", "1", "sip:127.0.0.199:5060")


def test_a_front_that_does_not_answer_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "kamcmd"
    fake.write_text("#!/bin/sh\nexec sleep 5\n")
    fake.chmod(0o755)
    monkeypatch.setattr("telephony.kamailio.kamcmd_program", lambda: str(fake))
    with pytest.raises(KamailioUnreachable, match=r"within 0\.2 s"):
        dispatcher_list("unix:/nowhere", timeout=0.2)


def test_answering_nodes_are_active_and_still_probed() -> None:
    nodes = parse_dispatcher_list(transcript("answering"))
    assert {n.duid: (n.state, n.active, n.probing) for n in nodes} == {
        "ast1": ("active", True, True),
        "ast2": ("active", True, True),
    }


def test_a_drained_node_is_disabled_and_not_probed() -> None:
    by_name = {n.duid: n for n in parse_dispatcher_list(transcript("drained"))}
    assert (by_name["ast2"].flags, by_name["ast2"].active) == ("DX", False)
    assert by_name["ast1"].active


def test_set_state_sends_kamailios_letters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = tmp_path / "argv"
    fake = tmp_path / "kamcmd"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {said}\necho "Ok. Dispatcher state updated."\n')
    fake.chmod(0o755)
    monkeypatch.setattr("telephony.kamailio.kamcmd_program", lambda: str(fake))
    for state in ("disabled", "active", "inactive"):
        set_node_state("unix:/run/k", "sip:127.0.0.112:5060", state)  # type: ignore[arg-type]
    assert said.read_text().splitlines() == [
        f"-s unix:/run/k dispatcher.set_state {letters} 1 sip:127.0.0.112:5060"
        for letters in ("d", "ap", "ip")
    ]
