"""Every agent's desk is sent again when a cluster node's link goes up or down (issue 22).

The agent page's stream re-sends the desk only when its version moves; the line that
names the nodes not connected comes with it, so a link change must move every agent's
version, not only those with a call on that node (seen in Chromium by
tests/store/test_console_nodes_down_browser.py: ast2 stayed named after it came up).
"""

from __future__ import annotations

from dashboard.agent_pop import AgentDesk
from links.ami import LinkStates


def test_a_link_going_up_or_down_moves_every_agents_desk_and_nothing_else_does() -> None:
    desk = AgentDesk()
    desk.links = LinkStates(("ast1", "ast2"))
    desk._linked("ast1", True)
    seen = {login: desk.version(login) for login in ("wang", "li")}

    desk._linked("ast2", True)  # ast2 came up: nobody's desk should still name it
    assert all(desk.version(login) > seen[login] for login in seen)
    assert desk.connected and desk.links.note() == ""

    seen = {login: desk.version(login) for login in seen}
    desk._linked("ast2", True)  # the same state again, as every turn reports it
    assert {login: desk.version(login) for login in seen} == seen

    desk._linked("ast2", False)
    assert all(desk.version(login) > seen[login] for login in seen)
    assert desk.links.note() == "节点未连接 nodes not connected: ast2"
