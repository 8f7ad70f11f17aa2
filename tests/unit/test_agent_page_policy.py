"""The agent's page may reach the browser phone's WebSocket; no other page may."""

from __future__ import annotations

from dashboard.headers import POLICY, policy_for


def test_only_the_agent_pages_may_reach_the_browser_phones_websocket() -> None:
    agent = policy_for("/agent", "console.example.org:443", 8089).decode()
    assert "connect-src 'self' wss://console.example.org:8089" in agent
    assert policy_for("/rates", "console.example.org", 8089).decode() == POLICY
    assert policy_for("/agent", "evil host;x", 8089).decode() == POLICY  # never echoed
