"""/kb: the knowledge base's entries, edited and audited (issue 23); /kb/search answers
the agent workspace's search box.

Supervisors and admins edit and publish (each change audited, a changed entry gets a
new version); staff read. Agents do not open these pages: they reach the entries
through `GET /kb/search?q=…`, which returns the best published entries valid today
for the lines their queues answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import (
    NO_UNIT_MESSAGE,
    Viewer,
    check_csrf,
    client_address,
    require_roles,
    session_viewer,
)
from dashboard.render import page
from db.models import Agent, KbEntry
from db.session import unit_of_work
from kb.entries import (
    EntryError,
    EntryIn,
    as_input,
    current_entries,
    edit,
    latest,
    live_entries,
    matcher,
    publish,
)
from kb.matching import Matcher, offered

router = APIRouter(tags=["kb"])
Reader = Annotated[Viewer, Depends(require_roles("supervisor", "admin", "staff"))]
Editor = Annotated[Viewer, Depends(require_roles("supervisor", "admin"))]
EDITORS = ("supervisor", "admin")
SEARCHERS = ("agent", "supervisor", "admin", "staff")
MAX_QUERY = 500


def search_viewer(request: Request) -> Viewer:
    """The viewer of /kb/search: agents too (the one KB address their role opens)."""
    viewer = session_viewer(request)
    if viewer.unitless:
        raise HTTPException(403, NO_UNIT_MESSAGE)
    if viewer.role not in SEARCHERS:
        raise HTTPException(403, "您的角色无权访问此页 / your role may not open this page")
    return viewer


def _agent_dids(request: Request, viewer: Viewer) -> set[str] | None:
    """The DIDs of the lines an agent's queues answer; None (every line) for other roles."""
    if viewer.role != "agent":
        return None
    config: HotlineConfig = request.app.state.config
    with unit_of_work(request.app.state.sessions) as session:
        agent = session.scalars(select(Agent).where(Agent.user_id == viewer.user_id)).first()
        queues = set(agent.queue_names) if agent is not None else set()
    return {line.did for line in config.lines if line.queue in queues}


def _matcher(request: Request, rows: list[KbEntry]) -> Matcher:
    """One matcher per set of entry versions, kept on the app (a version never changes)."""
    cache: dict[tuple[int, ...], Matcher] = getattr(request.app.state, "kb_matchers", None) or {}
    ids = tuple(sorted(r.id for r in rows))
    if ids not in cache:
        cache.clear()  # entries changed: the old index is of no further use
        cache[ids] = matcher(rows)
        request.app.state.kb_matchers = cache
    return cache[ids]


@router.get("/kb/search")
def kb_search(
    request: Request, viewer: Annotated[Viewer, Depends(search_viewer)], q: str = ""
) -> JSONResponse:
    """The three best published entries valid today (for an agent: of their lines), with
    scores and whether each clears `kb.threshold`."""
    config: HotlineConfig = request.app.state.config
    query = q.strip()[:MAX_QUERY]
    dids = _agent_dids(request, viewer)
    today = datetime.now(config.tz).date()
    with unit_of_work(request.app.state.sessions) as session:
        rows = live_entries(session, today, dids)
        by_key = {r.key: r for r in rows}
        matches = _matcher(request, rows).search(query, 3) if rows and query else []
        good = {m.entry_key for m in offered(matches, config.kb.threshold)}
        found = [
            {
                "key": m.entry_key,
                "entry_id": by_key[m.entry_key].id,
                "version": by_key[m.entry_key].version,
                "title": m.title,
                "score": m.score,
                "offered": m.entry_key in good,
                "category": by_key[m.entry_key].category,
                "answer_zh": by_key[m.entry_key].answer_zh,
                "answer_en": by_key[m.entry_key].answer_en,
            }
            for m in matches
        ]
    return JSONResponse({"query": query, "threshold": config.kb.threshold, "matches": found})


@router.get("/kb")
def kb_list(request: Request, viewer: Reader) -> Response:
    """Every entry's newest version, by category; editors see edit links."""
    with unit_of_work(request.app.state.sessions) as session:
        rows = current_entries(session)
        session.expunge_all()
    return page(request, "kb.html", viewer, {"rows": rows, "may_edit": viewer.role in EDITORS})


def _entry_page(
    request: Request, viewer: Viewer, key: str, error: str = "", done: str = "", status: int = 200
) -> Response:
    with unit_of_work(request.app.state.sessions) as session:
        row = latest(session, key[:64])
        if row is None:
            raise HTTPException(404, "没有这个条目 / no such entry")
        entry = as_input(row, session)
        context = {
            "row": row,
            "entry": entry,
            "may_edit": viewer.role in EDITORS and row.status != "retired",
            "error": error,
            "done": done,
        }
        session.expunge_all()
    return page(request, "kb_entry.html", viewer, context, status)


@router.get("/kb/{key}")
def kb_entry(request: Request, key: str, viewer: Reader) -> Response:
    """One entry: what it says, its version and review, and (for editors) the edit form."""
    return _entry_page(request, viewer, key)


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace("，", ",").replace("\n", ",").split(",")]


def _day(text: str) -> date | None:
    return date.fromisoformat(text.strip()) if text.strip() else None


Text = Annotated[str, Form(max_length=4000)]


def _form_entry(key: str, form: dict[str, str]) -> EntryIn:
    """The edit form as an entry, or EntryError naming the first bad field."""
    try:
        return EntryIn(
            key=key,
            title=form["title"],
            phrasings=[p.strip() for p in form["phrasings"].splitlines()],
            keywords=_lines(form["keywords"]),
            answer_zh=form["answer_zh"],
            answer_en=form["answer_en"].strip() or None,
            category=form["category"].strip() or None,
            lines=_lines(form["lines"]),
            valid_from=_day(form["valid_from"]),
            valid_to=_day(form["valid_to"]),
            owner=form["owner"].strip() or None,
            status="published" if form["status"] == "published" else "draft",
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        raise EntryError(f"{where}: {first['msg']}") from None
    except ValueError as exc:
        raise EntryError(f"日期 date: {exc}") from None


@router.post("/kb/{key}")
def kb_edit(
    request: Request,
    key: str,
    viewer: Editor,
    title: Text = "",
    phrasings: Text = "",
    keywords: Text = "",
    answer_zh: Text = "",
    answer_en: Text = "",
    category: Text = "",
    lines: Text = "",
    valid_from: Text = "",
    valid_to: Text = "",
    owner: Text = "",
    status: Text = "draft",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Save an edit: a new version if the content changed (the old one retired), audited."""
    check_csrf(request, viewer, csrf)
    form = {
        "title": title,
        "phrasings": phrasings,
        "keywords": keywords,
        "answer_zh": answer_zh,
        "answer_en": answer_en,
        "category": category,
        "lines": lines,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "owner": owner,
        "status": status,
    }
    try:
        entry = _form_entry(key[:64], form)
        with unit_of_work(request.app.state.sessions) as session:
            row, what = edit(session, entry, viewer.username)
            audit(
                session,
                viewer.username,
                viewer.role,
                "kb_edit",
                "kb_entry",
                row.id,
                client_address(request),
                f"{row.key} v{row.version} {what}",
            )
    except EntryError as exc:
        return _entry_page(request, viewer, key, error=str(exc), status=400)
    return _entry_page(request, viewer, key, done=what)


@router.post("/kb/{key}/publish")
def kb_publish(
    request: Request,
    key: str,
    viewer: Editor,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Publish the entry's newest version (reviewed now), audited."""
    check_csrf(request, viewer, csrf)
    try:
        with unit_of_work(request.app.state.sessions) as session:
            row = publish(session, key[:64], viewer.username)
            audit(
                session,
                viewer.username,
                viewer.role,
                "kb_publish",
                "kb_entry",
                row.id,
                client_address(request),
                f"{row.key} v{row.version}",
            )
    except EntryError as exc:
        return _entry_page(request, viewer, key, error=str(exc), status=400)
    return _entry_page(request, viewer, key, done="published")
