"""The console served on loopback in a thread, for the browser tests and the page bench."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn


@contextlib.contextmanager
def serve_console(app, port: int) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app served by uvicorn on loopback in its own thread (own event loop); its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )  # X-Forwarded-For counts only from web.trusted_proxies, as in `hotline serve`
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
