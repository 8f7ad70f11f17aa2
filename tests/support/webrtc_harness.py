"""A harness page for the agent's browser phone in Chromium (dashboard/static/agent_phone.js).

Served on loopback with the console's Content-Security-Policy, connect-src
widened by the one socket the phone registers on, as the agent's page has it
(no inline script, no eval). The page exposes `startPhone(options)` and
`phoneEvents` to the test.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dashboard.headers import POLICY

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parents[2] / "dashboard" / "static"


def chromium_args(microphone: Path) -> list[str]:
    """Chromium with a fake microphone playing `microphone`, and real WebRTC on loopback."""
    return [
        "--no-sandbox",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        # Asterisk on loopback cannot resolve the .local names Chromium hides its IPs behind
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


HARNESS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>agent phone harness</title>
<script type="module" src="/harness.js"></script></head>
<body><h1>agent phone</h1><p id="state">idle</p><ol id="log"></ol>
<audio id="remote" autoplay></audio></body></html>
"""

HARNESS_JS = """import { createPhone } from "/static/agent_phone.js";
window.phoneEvents = [];
const note = (text) => {
  document.getElementById("state").textContent = text;
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("log").appendChild(item);
};
window.startPhone = async (options) => {
  window.phone = createPhone({
    ...options,
    audioElement: document.getElementById("remote"),
    onEvent: (event) => {
      const { header, ...plain } = event;
      window.phoneEvents.push(plain);
      note(event.type + (event.from ? " " + event.from : "") + (event.cause ? " " + event.cause : ""));
    },
  });
  await window.phone.register();
};
window.phoneReady = true;
"""


@contextlib.contextmanager
def serve_harness(site: Path, socket_origin: str) -> Iterator[str]:
    """The harness page and dashboard/static on http://127.0.0.1:PORT (getUserMedia allows it).

    Served with the console's Content-Security-Policy, connect-src widened by the one
    socket origin (wss://… on one box, ws://FRONT:PORT in a cluster).
    """
    policy = POLICY.replace("connect-src 'self'", f"connect-src 'self' {socket_origin}")
    (site / "static").symlink_to(STATIC, target_is_directory=True)
    (site / "index.html").write_text(HARNESS_HTML)
    (site / "harness.js").write_text(HARNESS_JS)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", policy)
            super().end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
