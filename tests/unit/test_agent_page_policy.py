"""The agent's page may reach the browser phone's WebSocket; no other page may."""

from __future__ import annotations

from core.sip_front import front_interface, front_websocket
from dashboard.headers import POLICY, policy_for


def test_only_the_agent_pages_may_reach_the_browser_phones_websocket() -> None:
    agent = policy_for("/agent", "console.example.org:443", 8089).decode()
    assert "connect-src 'self' wss://console.example.org:8089" in agent
    assert policy_for("/rates", "console.example.org", 8089).decode() == POLICY
    assert policy_for("/agent", "evil host;x", 8089).decode() == POLICY  # never echoed


def test_in_a_cluster_the_agent_pages_reach_the_fronts_websocket_only() -> None:
    front = "ws://127.0.0.10:8080"
    agent = policy_for("/agent", "console.example.org", 8089, front).decode()
    assert "connect-src 'self' ws://127.0.0.10:8080;" in agent
    assert "console.example.org" not in agent  # not the one-box Asterisk's wss
    assert policy_for("/rates", "console.example.org", 8089, front).decode() == POLICY


def test_a_browser_seat_is_rung_through_the_fronts_webrtc_endpoint_a_desk_seat_not() -> None:
    assert front_interface("agent-w001") == "PJSIP/agent-w001@sip-front-webrtc"
    assert front_interface("agent-d001") == "PJSIP/agent-d001@sip-front"
    assert front_websocket("127.0.0.10", 8080) == "ws://127.0.0.10:8080"
