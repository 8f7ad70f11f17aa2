"""POST /api/import: the main work-order platform pushes departments and tickets.

The body is the same JSON a file import takes: {"departments": [...],
"tickets": [...]} (or a list of tickets). The caller must send
`Authorization: Bearer <token>`, the token being the environment variable named
by `web.import_token_env`; with no token configured the endpoint stays closed
(503) rather than open. The answer lists what was created, updated or left
unchanged and every refused record with where it is (`tickets[3]`) and why;
refused records do not stop the others (status 200 either way, 422 only when
the body itself is unusable). A refusal names the record and the field, never
what it holds.

Every import with the right token is an audit row (`import`, or
`import_refused` for a body refused whole): the token by its variable's name and
the first 8 hex digits of its SHA-256 (which token, after a rotation, without
the token), the client's address, and the counts. A wrong token is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from dashboard.audit import audit
from dashboard.auth import client_address
from db.session import unit_of_work
from tickets.intake.importer import Importer, ImportFileError, body_items, parse_document

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["intake"])


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Refuse unless the bearer token matches the configured one (compared in constant time)."""
    config = request.app.state.config
    expected = config.web.import_token()
    if expected is None:
        raise HTTPException(
            503, f"import endpoint closed: set {config.web.import_token_env} to enable it"
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        log.warning("import: a request without the right token from %s", client_address(request))
        raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required")


def _audit(request: Request, action: str, detail: str) -> None:
    """One audit row for an import: who (the token), from where, what it did."""
    config = request.app.state.config
    token = config.web.import_token() or ""
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:8]
    name = config.web.import_token_env
    with unit_of_work(request.app.state.sessions) as session:
        audit(
            session,
            f"api:{name}"[:64],
            "platform",
            action,
            "import",
            None,
            client_address(request),
            f"token {name} sha256:{fingerprint}; {detail}",
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes, whether declared or streamed."""
    declared = request.headers.get("content-length", "")
    too_big = HTTPException(
        413, f"the body is larger than web.max_import_bytes ({limit} bytes): split the batch"
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_big  # refused from the header alone: the body is never read
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


@router.post("/import", dependencies=[Depends(require_token)])
async def import_records(request: Request) -> dict[str, Any]:
    """Upsert the records in the JSON body; idempotent by department code and external id.

    The token is checked before a byte of the body is read; the body is bounded,
    and parsing, validation and the import run in worker threads, off the event
    loop that also serves FastAGI to callers.
    """
    config = request.app.state.config
    try:
        raw = await read_body(request, config.web.max_import_bytes)
        try:
            items = await run_in_threadpool(lambda: list(body_items(parse_document(raw))))
        except ImportFileError as exc:
            raise HTTPException(422, str(exc)) from None
        if len(items) > config.web.max_import_records:
            raise HTTPException(
                413,
                f"{len(items)} records in one request; at most {config.web.max_import_records} "
                "(web.max_import_records): split the batch or use `hotline tickets import`",
            )
    except HTTPException as exc:
        detail = f"{exc.status_code} {exc.detail}"
        await run_in_threadpool(_audit, request, "import_refused", detail)
        raise
    importer = Importer(request.app.state.sessions, config)
    report = await run_in_threadpool(importer.run, items)
    await run_in_threadpool(_audit, request, "import", f"{len(items)} records: {report.summary()}")
    return report.as_dict()
