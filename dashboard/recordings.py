"""Recordings: search calls, the call page, and audited playback through signed links.

A recording is reached by call id and kind ("call": the whole call recorded by
MixMonitor; "request": the citizen's request) through a link signed for the
viewer's session that works for `web.link_seconds`. The file path comes from the
store, never from the request, and must lie inside the recordings folder. The
first use of each link writes an audit row (who, when, which, from where);
HTTP Range requests of the same link (seeking) do not add rows.

Recordings are for `web.recording_roles` (supervisors and staff by default; an
admin manages accounts and reads the audit log, and listens only if listed): the
search, the call page and the audio answer 403 to the others. Of those, the
roles in `web.download_roles` get a download link (the whole file as an
attachment, audited as a download) and a player link that serves the whole
file; the others' player link answers Range requests only (every HTML5 player
sends them) and at most `web.stream_piece_kb` of audio per answer, so no single
request, and no "save" of the player, hands over the whole file. Anyone who can
hear a recording can record it: what the setting decides is who is handed the
file, and the audit trail says who listened.

Roles that see numbers masked search by caller with a whole number only, matched
exactly: a prefix would answer "does the number go on with this digit?", and a
few dozen such questions give the number back. Each such search is audited (the
number masked) and counted against `web.caller_searches_per_minute` and
`web.caller_searches_per_day` for the user, read from the audit trail itself.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path as FilePath
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from itsdangerous import BadSignature, SignatureExpired

from core import periods
from core.config import HotlineConfig
from core.phone_numbers import is_valid, mask
from core.recording_keys import recordings_root, resolve
from core.vocabulary import AttemptOutcome, CallDirection, CallStep
from dashboard.audit import audit, count_actions
from dashboard.auth import Keys, Viewer, client_address, recording_viewer
from dashboard.call_search import CallQuery, call_by_id, search_calls
from dashboard.quality import scoring_context
from dashboard.render import page
from dashboard.scope import in_subtree
from dashboard.waveform import cached_peaks, peaks_svg
from db.console import AttemptLine, attempts
from db.models import Call, utcnow
from db.session import unit_of_work

router = APIRouter(tags=["recordings"])
KINDS = {"call": "全程录音 whole call", "request": "诉求录音 request"}
DIGITS = re.compile(r"^\+?[0-9]{0,20}$")
RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
PAGE_SIZE = 50
CallId = Annotated[int, Path(ge=1, le=2**62)]


class SearchError(ValueError):
    """A search field that is not what it should be (named in the message)."""

    status = 400


class SearchLimited(SearchError):
    """Too many searches by caller number for now."""

    status = 429


WHOLE_NUMBER = (
    "来电号码：您的角色只能按完整号码检索 / caller: your role searches by the whole number only"
)


def _digits(value: str, field: str) -> str:
    value = value.strip()
    if not DIGITS.match(value):
        raise SearchError(f"{field}：只能是数字 / {field}: digits only")
    return value


E = TypeVar("E", bound=Enum)


def _choice(value: str, allowed: type[E], field: str) -> E | None:
    if not value:
        return None
    try:
        return allowed(value)
    except ValueError:
        raise SearchError(f"{field}：无此选项 / {field}: not one of the choices") from None


def _seconds(value: str, field: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit() or len(value.strip()) > 6:
        raise SearchError(f"{field}：请填秒数 / {field}: whole seconds")
    return int(value)


def _cursor(value: str) -> tuple[datetime, int] | None:
    if not value:
        return None
    micros, _, call_id = value.partition(".")
    if not (micros.isdigit() and call_id.isdigit()) or len(micros) > 17 or len(call_id) > 18:
        raise SearchError("after：分页参数无效 / after: not a page cursor")
    return datetime.fromtimestamp(int(micros) / 1e6, UTC), int(call_id)


def cursor_of(started_at: datetime, call_id: int) -> str:
    return f"{round(started_at.timestamp() * 1e6)}.{call_id}"


def parse_query(params: dict[str, str], config: HotlineConfig, viewer: Viewer) -> CallQuery:
    """The search form's fields as a CallQuery; SearchError names a bad field."""
    start = end = None
    first, last = params.get("from", "").strip(), params.get("to", "").strip()
    if first or last:
        try:
            span = periods.date_range(first or "2000-01-01", last or "2100-01-01")
        except periods.PeriodError as exc:
            raise SearchError(f"日期 date: {exc}") from None
        start, end = span.utc_range(config.timezone)
    caller = _digits(params.get("caller", ""), "来电号码 caller")
    if caller and not viewer.sees_numbers and not is_valid(caller):
        raise SearchError(WHOLE_NUMBER)
    return CallQuery(
        ticket_number=_digits(params.get("ticket", ""), "工单号 ticket"),
        caller=caller,
        caller_exact=not viewer.sees_numbers,
        start=start,
        end=end,
        did=_digits(params.get("line", ""), "线路 line"),
        direction=_choice(params.get("direction", ""), CallDirection, "方向 direction"),
        min_seconds=_seconds(params.get("min_seconds", ""), "最短 min"),
        max_seconds=_seconds(params.get("max_seconds", ""), "最长 max"),
        last_step=(_choice(params.get("step", ""), CallStep, "最后步骤 step") or ""),
        outcome=_choice(params.get("outcome", ""), AttemptOutcome, "回访结果 outcome"),
        scope_root=viewer.scope_root,
        after=_cursor(params.get("after", "")),
        limit=PAGE_SIZE,
    )


SEARCH_FIELDS = ("ticket", "caller", "from", "to", "line", "direction", "min_seconds",
                 "max_seconds", "step", "outcome", "after")  # fmt: skip


_CALLER_SEARCHES = threading.Lock()  # count-then-write, one at a time


def allow_caller_search(request: Request, viewer: Viewer, query: CallQuery) -> None:
    """Audit a masked viewer's search by caller number, within the per-user limits;
    SearchLimited (nothing searched, nothing written) beyond them."""
    config: HotlineConfig = request.app.state.config
    now = utcnow()
    limits = (
        (timedelta(minutes=1), config.web.caller_searches_per_minute, "每分钟", "a minute"),
        (timedelta(days=1), config.web.caller_searches_per_day, "每天", "a day"),
    )
    with _CALLER_SEARCHES, unit_of_work(request.app.state.sessions) as session:
        for span, limit, per_zh, per_en in limits:
            if count_actions(session, viewer.username, "caller_search", now - span) >= limit:
                raise SearchLimited(
                    f"按号码检索次数已达上限（{per_zh} {limit} 次），请稍后再试 / searches by "
                    f"caller number are limited to {limit} {per_en}: try again later"
                )
        ticket = f", ticket {query.ticket_number}" if query.ticket_number else ""
        detail = f"caller {mask(query.caller)}{ticket}"
        address = client_address(request)
        audit(
            session, viewer.username, viewer.role, "caller_search", "calls", None, address, detail
        )


Listener = Annotated[Viewer, Depends(recording_viewer)]


@router.get("/calls")
def calls_page(request: Request, viewer: Listener) -> Response:
    """The recordings search, newest first, keyset-paginated."""
    config: HotlineConfig = request.app.state.config
    params = {k: request.query_params.get(k, "")[:100] for k in SEARCH_FIELDS}
    error, hits, status = "", [], 200
    try:
        query = parse_query(params, config, viewer)
        if query.caller and not viewer.sees_numbers:
            allow_caller_search(request, viewer, query)
        with unit_of_work(request.app.state.sessions) as session:
            hits = search_calls(session, query)
    except SearchError as exc:
        error, status = str(exc), exc.status
    more = ""
    if len(hits) == PAGE_SIZE:
        more = cursor_of(hits[-1].started_at, hits[-1].id)
    keep = {k: v for k, v in params.items() if v and k != "after"}
    return page(
        request,
        "calls.html",
        viewer,
        {
            "params": params,
            "keep": keep,
            "hits": hits,
            "error": error,
            "more": more,
            "steps": [s.value for s in CallStep],
            "outcomes": [o.value for o in AttemptOutcome],
            "masked": not viewer.sees_numbers,
        },
        status,
    )


def _recording_path(call: Call, kind: str) -> str | None:
    if kind == "call":
        return call.recording_path
    ticket = call.ticket
    if kind == "request" and ticket is not None and ticket.origin_uniqueid == call.uniqueid:
        return ticket.recording_path
    return None


def _visible_call(request: Request, viewer: Viewer, call_id: int) -> tuple[Call, list[AttemptLine]]:
    """The call if it exists and the viewer may see it (404 / 403 otherwise); in a session."""
    with unit_of_work(request.app.state.sessions) as session:
        call = call_by_id(session, call_id)
        if call is None:
            raise HTTPException(404, f"没有编号为 {call_id} 的通话 / no call {call_id}")
        if viewer.scope_root is not None:
            unit = call.ticket.department_id if call.ticket else None
            if not in_subtree(session, unit, viewer.scope_root):
                raise HTTPException(403, "此通话不属于您的单位 / not a call of your unit")
        survey = attempts(session, call.started_at, call.started_at, ticket_id=call.ticket_id or -1)
        return call, survey


def _inside(path: FilePath, folder: FilePath) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: CallId, viewer: Listener) -> Response:
    """One call: players with signed links, waveform, transcript, the ticket and its history."""
    config: HotlineConfig = request.app.state.config
    keys: Keys = request.app.state.keys
    call, survey = _visible_call(request, viewer, call_id)
    recordings = []
    for kind, label in KINDS.items():
        stored = _recording_path(call, kind)
        if not stored:
            continue
        path = resolve(stored, recordings_root(config))
        present = path.is_file() and _inside(path, recordings_root(config))
        item = {"kind": kind, "label": label, "present": present, "wave": ""}
        if present:
            nonce = secrets.token_urlsafe(9)
            item["play"] = "/media/" + keys.links.dumps(
                {"c": call.id, "k": kind, "s": viewer.sid, "d": 0, "n": nonce}
            )
            if viewer.may_download:
                item["download"] = "/media/" + keys.links.dumps(
                    {"c": call.id, "k": kind, "s": viewer.sid, "d": 1, "n": nonce + "d"}
                )
            try:
                item["wave"] = peaks_svg(cached_peaks(path, config.cache_dir))
            except (OSError, EOFError, ValueError):
                item["wave"] = ""
        recordings.append(item)
    answers = [a for a in survey if a.call_id == call.id]
    with unit_of_work(request.app.state.sessions) as session:
        quality = scoring_context(
            session, call.uniqueid, viewer, dict(config.monitoring.quality_checklist)
        )
    return page(
        request,
        "call.html",
        viewer,
        {
            "call": call,
            "ticket": call.ticket,
            "recordings": recordings,
            "answers": answers,
            **quality,
        },
    )


class _Audited:
    """Link nonces already audited (a seek re-requests the same link with a Range)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now: float, ttl: float) -> bool:
        with self._lock:
            for old in [n for n, at in self._seen.items() if at < now - ttl]:
                del self._seen[old]
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


AUDITED = _Audited()


PLAYER_ONLY = (
    "请在通话页的播放器中收听；您的角色不能下载录音 / listen in the call page's player: "
    "your role may not download recordings"
)


def _piece(path: FilePath, header: str, most: int) -> Response:
    """One byte range of a recording, at most `most` bytes (206), for a role that may
    listen but not download (a request without a Range, a save or a script, got 403)."""
    size = path.stat().st_size
    found = RANGE.match(header.strip())
    first = last = None
    if found and (found[1] or found[2]):
        if found[1]:
            first = int(found[1])
            last = min(int(found[2]), size - 1) if found[2] else size - 1
        else:  # bytes=-N: the last N bytes
            first, last = max(size - int(found[2]), 0), size - 1
    if first is None or last is None or first >= size or last < first:
        return Response(
            status_code=416,
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    last = min(last, first + most - 1)
    with path.open("rb") as handle:
        handle.seek(first)
        data = handle.read(last - first + 1)
    return Response(
        data,
        status_code=206,
        media_type="audio/wav",
        headers={
            "Content-Range": f"bytes {first}-{first + len(data) - 1}/{size}",
            "Accept-Ranges": "bytes",
            "Content-Disposition": "inline",
        },
    )


@router.get("/media/{token}")
def media(request: Request, token: str, viewer: Listener) -> Response:
    """Stream a recording (HTTP Range: seeking works) for a valid link of this session:
    the whole file for `web.download_roles`, pieces of it for the other listeners."""
    config: HotlineConfig = request.app.state.config
    keys: Keys = request.app.state.keys
    if len(token) > 400:
        raise HTTPException(403, "链接无效 / invalid link")
    try:
        data = keys.links.loads(token, max_age=config.web.link_seconds)
        call_id, kind, sid = int(data["c"]), str(data["k"]), str(data["s"])
        download, nonce = bool(data["d"]), str(data["n"])
    except SignatureExpired:
        raise HTTPException(
            403, "链接已过期，请刷新通话页 / link expired: reload the call page"
        ) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise HTTPException(403, "链接无效 / invalid link") from None
    if sid != viewer.sid or kind not in KINDS:
        raise HTTPException(403, "链接不属于本次登录 / link of another session")
    if download and not viewer.may_download:
        raise HTTPException(403, "您的角色不能下载录音 / your role may not download")
    call, _ = _visible_call(request, viewer, call_id)
    stored = _recording_path(call, kind)
    root = recordings_root(config)
    path = resolve(stored, root) if stored else None
    if path is None or not _inside(path, root) or not path.is_file():
        raise HTTPException(404, "录音文件不存在 / the recording file is missing")
    ranged = request.headers.get("range", "")
    if not viewer.may_download and not ranged:
        raise HTTPException(403, PLAYER_ONLY)
    if AUDITED.first_use(nonce, time.monotonic(), config.web.link_seconds * 2):
        with unit_of_work(request.app.state.sessions) as session:
            ticket = call.ticket.number if call.ticket else "-"
            audit(
                session,
                viewer.username,
                viewer.role,
                "download" if download else "play",
                "recording",
                call.id,
                client_address(request),
                f"{kind} of call {call.id}, ticket {ticket}, caller {mask(call.caller_number)}",
            )
    if not viewer.may_download:
        return _piece(path, ranged, config.web.stream_piece_kb * 1024)
    name = f"call-{call.id}-{kind}.wav"
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=name if download else None,
        content_disposition_type="attachment" if download else "inline",
    )
