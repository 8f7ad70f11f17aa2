"""A pause on one node spreads to the others, and the nodes' echoes never start another round."""

from __future__ import annotations

from agents.shared_pause import Pause, PauseStates, SetPause
from telephony.ami import AMIEvent

NODES = ("ast1", "ast2")
INTERFACE = "PJSIP/s1@sip-front"
AUTO = Pause(True, "Auto-Pause")
TRAINING = Pause(True, "training")
READY = Pause(False)


def paused(pause: Pause, at: float, queue: str = "hotline-agents") -> AMIEvent:
    return AMIEvent(
        "QueueMemberPause",
        {
            "Queue": queue,
            "MemberName": "wang",
            "Interface": INTERFACE,
            "StateInterface": "Custom:agent-s1",
            "Paused": "1" if pause.paused else "0",
            "PausedReason": pause.reason,
            "Timestamp": f"{at:.6f}",
        },
    )


def write(node: str, pause: Pause) -> SetPause:
    return SetPause(node, "s1", INTERFACE, pause)


def test_an_auto_pause_on_one_node_pauses_the_member_on_the_others() -> None:
    core = PauseStates(NODES)
    assert core.feed("ast1", paused(AUTO, 100), 100) == [write("ast2", AUTO)]
    fields = write("ast2", AUTO).ami_fields()
    assert fields == {"Interface": INTERFACE, "Paused": "true", "Reason": "Auto-Pause"}
    assert write("ast2", READY).ami_fields()["Paused"] == "false"


def test_the_echo_of_a_write_and_the_other_queues_events_start_nothing() -> None:
    core = PauseStates(NODES)
    core.feed("ast1", paused(AUTO, 100), 100)
    # node 2 reports the write back, once per queue the member is in
    assert core.feed("ast2", paused(AUTO, 100.2), 100.2) == []
    assert core.feed("ast2", paused(AUTO, 100.2, "hotline-agents-en"), 100.2) == []
    # and node 1's own second queue
    assert core.feed("ast1", paused(AUTO, 100, "hotline-agents-en"), 100.3) == []


def test_the_console_pausing_every_node_at_once_writes_nothing_more_in_the_end() -> None:
    core = PauseStates(NODES)
    writes = core.feed("ast1", paused(TRAINING, 100), 100)
    writes += core.feed("ast2", paused(TRAINING, 100.001), 100)
    writes += core.feed("ast2", paused(TRAINING, 100.2), 100.2)
    assert writes == [write("ast2", TRAINING)]  # one write, which changes nothing on node 2


def test_two_nodes_changing_at_once_end_on_the_newest_change_everywhere() -> None:
    # node 1 auto-pauses at 20.0, the agent un-pauses everywhere at 20.5; our write of the
    # auto-pause reaches node 2 after its un-pause: node 2 is put back to the newest
    core = PauseStates(NODES)
    out = core.feed("ast1", paused(AUTO, 20.0), 20.0)
    assert out == [write("ast2", AUTO)]
    out = core.feed("ast1", paused(READY, 20.5), 20.5)
    assert out == [write("ast2", READY)]
    assert core.feed("ast2", paused(READY, 20.5), 20.5) == []
    out = core.feed("ast2", paused(AUTO, 21.0), 21.0)  # the late write
    assert out == [write("ast2", READY)]
    assert core.feed("ast2", paused(READY, 21.1), 21.1) == []
    assert core.newest["s1"].pause == READY


def test_an_older_change_arriving_late_is_undone_on_its_node() -> None:
    core = PauseStates(NODES)
    core.feed("ast1", paused(READY, 50), 50)
    # a late event from before the change, while the write to its node is on its way: that
    # write puts the node right; once it has landed, the node is put back again
    assert core.feed("ast2", paused(TRAINING, 40), 50.05) == []
    assert core.feed("ast2", paused(READY, 50.1), 50.1) == []  # the write landed
    assert core.feed("ast2", paused(TRAINING, 45), 51) == [write("ast2", READY)]
    assert core.newest["s1"].pause == READY


def test_a_write_never_reported_back_is_forgotten_and_a_node_back_gets_every_pause() -> None:
    core = PauseStates(NODES)
    core.feed("ast1", paused(AUTO, 100), 100)  # node 2 away: the write is lost
    # 30 s later node 2 is un-paused by hand: its own change, not an echo of the lost write
    assert core.feed("ast2", paused(READY, 130), 130) == [write("ast1", READY)]
    assert core.replay("ast2", 140) == [write("ast2", READY)]


def test_events_without_a_seat_are_ignored() -> None:
    core = PauseStates(NODES)
    odd = AMIEvent("QueueMemberPause", {"Interface": "IAX2/far", "Paused": "1"})
    assert core.feed("ast1", odd, 0) == []
    assert core.feed("ast1", AMIEvent("AgentCalled", {"Interface": INTERFACE}), 0) == []


def test_an_auto_pause_of_an_agent_busy_elsewhere_is_the_fronts_refusal_undone_there() -> None:
    core = PauseStates(NODES, busy=lambda seat: seat == "s1")
    # node 1 rang s1 while s1 talked on node 2: the front's 486, app_queue's Auto-Pause
    assert core.feed("ast1", paused(AUTO, 100), 100) == [write("ast1", READY)]
    # the same auto-pause in the member's other queue: that write is on its way already
    assert core.feed("ast1", paused(AUTO, 100, "hotline-agents-en"), 100) == []
    assert "s1" not in core.newest  # nothing spread, nothing to replay
    # the un-pause reported back (once per queue, per write) starts nothing
    for _ in range(4):
        core.feed("ast1", paused(READY, 100.1), 100.1)
    assert core.feed("ast2", paused(READY, 100.2), 100.2) == []


def test_a_busy_agent_paused_for_training_is_put_back_to_training_not_to_ready() -> None:
    core = PauseStates(NODES, busy=lambda seat: True)
    core.feed("ast1", paused(TRAINING, 50), 50)
    assert core.feed("ast2", paused(AUTO, 100), 100) == [write("ast2", TRAINING)]
