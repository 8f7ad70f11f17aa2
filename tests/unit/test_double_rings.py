"""Reading 'never rung by two nodes at once' from two nodes' queue_log lines."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.double_rings import busy_spans, double_rings
from agents.queue_log import QueueEvent, parse_line

T0 = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp())
UNTIL = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def lines(*rows: str) -> list[QueueEvent]:
    events = [event for row in rows if (event := parse_line(row)) is not None]
    assert len(events) == len(rows)
    return events


def at(seconds: int) -> int:
    return T0 + seconds


def test_a_call_on_each_node_one_after_the_other_is_no_double_ring() -> None:
    ast1 = lines(
        f"{at(0)}|ast1-1.1|hotline-agents|NONE|ENTERQUEUE||13900000001|1",
        f"{at(3)}|ast1-1.1|hotline-agents|wang|CONNECT|3|ast1-1.2|2",
        f"{at(33)}|ast1-1.1|hotline-agents|wang|COMPLETECALLER|3|30|1",
    )
    ast2 = lines(
        f"{at(34)}|ast2-1.1|hotline-agents|wang|CONNECT|5|ast2-1.2|1",
        f"{at(60)}|ast2-1.1|hotline-agents|wang|COMPLETEAGENT|5|26|1",
    )
    spans = {"ast1": busy_spans("ast1", ast1, UNTIL), "ast2": busy_spans("ast2", ast2, UNTIL)}
    assert [(s.what, s.start.second, s.end.second) for s in spans["ast1"]] == [
        ("ring", 1, 3),
        ("call", 3, 33),
    ]
    assert double_rings(spans) == []


def test_a_ring_on_one_node_during_a_call_on_the_other_is_found() -> None:
    ast1 = lines(
        f"{at(3)}|ast1-1.1|hotline-agents|wang|CONNECT|3|ast1-1.2|2",
        f"{at(33)}|ast1-1.1|hotline-agents|wang|COMPLETECALLER|3|30|1",
    )
    ast2 = lines(f"{at(20)}|ast2-1.1|hotline-agents|wang|RINGNOANSWER|15000")
    spans = {"ast1": busy_spans("ast1", ast1, UNTIL), "ast2": busy_spans("ast2", ast2, UNTIL)}
    found = double_rings(spans)
    assert len(found) == 1
    assert {found[0][0].node, found[0][1].node} == {"ast1", "ast2"}


def test_a_ring_the_front_refused_and_another_agents_call_are_not_double_rings() -> None:
    ast1 = lines(
        f"{at(3)}|ast1-1.1|hotline-agents|wang|CONNECT|3|ast1-1.2|2",
        f"{at(3)}|ast1-1.3|hotline-agents|li|CONNECT|3|ast1-1.4|2",
    )  # both still talking at the end of the log
    ast2 = lines(
        f"{at(20)}|ast2-1.1|hotline-agents|wang|RINGNOANSWER|0",  # 486 from the front
        f"{at(20)}|ast2-1.2|hotline-agents|zhao|RINGNOANSWER|15000",
    )
    spans = {"ast1": busy_spans("ast1", ast1, UNTIL), "ast2": busy_spans("ast2", ast2, UNTIL)}
    assert double_rings(spans) == []


def test_the_same_node_ringing_an_agent_twice_is_its_own_business() -> None:
    ast1 = lines(
        f"{at(10)}|ast1-1.1|hotline-agents|wang|RINGNOANSWER|15000",
        f"{at(12)}|ast1-1.2|hotline-agents|wang|RINGNOANSWER|15000",
    )
    assert double_rings({"ast1": busy_spans("ast1", ast1, UNTIL)}) == []
