"""Headers on every console response: what the browser may run, frame, sniff, send or keep.

- `Content-Security-Policy`: scripts, styles, media and connections from the
  console's own origin only, no inline script or style (the pages carry none:
  `static/console.css`, `static/live.js`), no plugins, no `<base>`, forms post
  to the console only, and no page may be framed (`frame-ancestors 'none'`;
  `X-Frame-Options: DENY` for older browsers).
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (a ticket
  number or a signed recording link in a URL never leaves in a Referer).
- `Cache-Control: no-store` on everything but the static files: pages show
  citizens' numbers, recordings and exports hold them, and a shared computer's
  browser cache must keep none of it.
- `Strict-Transport-Security` when `web.secure_cookies` is on (behind HTTPS).
- The agent's page (`/agent`) may also connect to Asterisk's secure WebSocket on
  the host the page came from (`wss://HOST:agents.wss_port`): the browser phone;
  in a cluster to the SIP front's WebSocket instead (`ws://FRONT:ws_port`).
"""

from __future__ import annotations

import re
from typing import Any

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
STATIC = "/static/"
AGENT_PAGES = "/agent"
HOST_NAME = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]+)?$")


def policy_for(path: str, host: str, wss_port: int | None, front: str | None = None) -> bytes:
    """The policy above; on the agent's pages connections to the browser phone's socket too.

    `front`: a cluster's SIP front (`ws://ADDRESS:PORT`), where the browser
    phones register instead of the page's own host.
    """
    if not path.startswith(AGENT_PAGES):
        return POLICY.encode()
    if front is not None:
        return POLICY.replace("connect-src 'self'", f"connect-src 'self' {front}").encode()
    match = HOST_NAME.match(host)
    if wss_port is None or match is None:
        return POLICY.encode()
    phone = f"connect-src 'self' wss://{match.group(1)}:{wss_port}"
    return POLICY.replace("connect-src 'self'", phone).encode()


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on each HTTP response of the console."""

    def __init__(
        self,
        app: Any,
        https: bool = False,
        wss_port: int | None = None,
        front: str | None = None,
    ) -> None:
        self.app = app
        self.wss_port, self.front = wss_port, front
        self.fixed = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if https:
            self.fixed.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        keep = scope["path"].startswith(STATIC)
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        policy = (
            b"content-security-policy",
            policy_for(scope["path"], host, self.wss_port, self.front),
        )

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                ours = {name for name, _ in self.fixed} | {policy[0]}
                if not keep:
                    ours.add(b"cache-control")
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                headers += [*self.fixed, policy]
                if not keep:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
