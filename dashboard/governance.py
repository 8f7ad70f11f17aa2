"""每月一题 from the hotspots page: a supervisor adopts a candidate or ends a topic.

Both are state changes, so both are for supervisors only (admins read the page
but do not steer the work), CSRF-checked and audited. The writes themselves are
`analysis.governance`'s (which also checks unit, month and duplicate title); a
refused request answers 400 with that one-line reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, Response
from fastapi.responses import RedirectResponse

from analysis.governance import GovernanceError, adopt, end
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, require_roles
from dashboard.hotspots import MONTH
from db.session import unit_of_work

router = APIRouter(tags=["hotspots"])
ADOPTERS = ("supervisor",)
Text = Annotated[str, Form(max_length=200)]


def _back(month: str, anchor: str) -> RedirectResponse:
    query = f"?month={month}" if MONTH.match(month) else ""
    return RedirectResponse(f"/hotspots{query}#{anchor}", status_code=303)


@router.post("/hotspots/governance/adopt")
def adopt_topic(
    request: Request,
    viewer: Annotated[Viewer, Depends(require_roles(*ADOPTERS))],
    csrf: Annotated[str, Form(max_length=128)] = "",
    title: Text = "",
    category: Annotated[str, Form(max_length=100)] = "",
    keywords: Annotated[str, Form(max_length=1000)] = "",
    lead_unit: Annotated[str, Form(max_length=64)] = "",
    start_month: Annotated[str, Form(max_length=20)] = "",
    goal: Annotated[str, Form(max_length=2000)] = "",
    month: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """采纳为每月一题: write a GovernanceTopic from a candidate's form, audited."""
    check_csrf(request, viewer, csrf)
    with unit_of_work(request.app.state.sessions) as session:
        try:
            topic = adopt(
                session,
                title=title,
                category=category,
                keywords=keywords,
                lead_unit=lead_unit,
                start_month=start_month,
                goal=goal,
                by=viewer.username,
            )
        except GovernanceError as exc:
            raise HTTPException(400, f"无法采纳 / cannot adopt: {exc}") from None
        audit(
            session,
            viewer.username,
            viewer.role,
            "governance_adopt",
            "governance_topic",
            topic.id,
            client_address(request),
            f"{topic.title}: {topic.category or '-'}, lead {lead_unit}, from {topic.start_month}",
        )
        anchor = f"topic-{topic.id}"
    return _back(month, anchor)


@router.post("/hotspots/governance/{topic_id}/end")
def end_topic(
    request: Request,
    topic_id: Annotated[int, Path(ge=1, le=2**62)],
    viewer: Annotated[Viewer, Depends(require_roles(*ADOPTERS))],
    csrf: Annotated[str, Form(max_length=128)] = "",
    end_month: Annotated[str, Form(max_length=20)] = "",
    month: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """结束: note the topic's end month on its goal (the model has no end column), audited."""
    check_csrf(request, viewer, csrf)
    with unit_of_work(request.app.state.sessions) as session:
        try:
            topic = end(session, topic_id, end_month, viewer.username)
        except GovernanceError as exc:
            raise HTTPException(400, f"无法结束 / cannot end: {exc}") from None
        if topic is None:
            raise HTTPException(404, f"没有编号为 {topic_id} 的每月一题 / no topic {topic_id}")
        audit(
            session,
            viewer.username,
            viewer.role,
            "governance_end",
            "governance_topic",
            topic.id,
            client_address(request),
            f"{topic.title}: ended {end_month.strip()}",
        )
    return _back(month, f"topic-{topic_id}")
