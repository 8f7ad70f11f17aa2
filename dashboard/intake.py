"""POST /api/import: the main work-order platform pushes departments and tickets.

The body is the same JSON a file import takes: {"departments": [...],
"tickets": [...]} (or a list of tickets). The caller must send
`Authorization: Bearer <token>`, the token being the environment variable named
by `web.import_token_env`; with no token configured the endpoint stays closed
(503) rather than open. The answer lists what was created, updated or left
unchanged and every refused record with where it is (`tickets[3]`) and why;
refused records do not stop the others (status 200 either way, 422 only when
the body itself is unusable).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from tickets.intake.importer import Importer, ImportFileError, body_items

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
        raise HTTPException(401, "a valid 'Authorization: Bearer <token>' header is required")


@router.post("/import", dependencies=[Depends(require_token)])
async def import_records(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Upsert the records in body; idempotent by department code and ticket external id."""
    config = request.app.state.config
    try:
        items = list(body_items(body))
    except ImportFileError as exc:
        raise HTTPException(422, str(exc)) from None
    if len(items) > config.web.max_import_records:
        raise HTTPException(
            413,
            f"{len(items)} records in one request; at most {config.web.max_import_records} "
            "(web.max_import_records): split the batch or use `hotline tickets import`",
        )
    importer = Importer(request.app.state.sessions, config)
    report = await run_in_threadpool(importer.run, items)
    return report.as_dict()
