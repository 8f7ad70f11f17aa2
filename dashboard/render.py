"""The templates every console page shares, their filters and the common context."""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from core.vocabulary import (
    AttemptOutcome,
    CallDirection,
    CallStep,
    EventKind,
    RequestType,
    TicketStatus,
    Urgency,
    label,
)
from dashboard.auth import Viewer

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _both(word: enum.Enum) -> str:
    chinese, english = label(word)
    return f"{chinese} {english}"


OUTCOME_NAMES = {o.value: _both(o) for o in AttemptOutcome}
STATUS_NAMES = {s.value: _both(s) for s in TicketStatus}
DIRECTION_NAMES = {d.value: _both(d) for d in CallDirection}
ANSWER_NAMES = {
    "contacted": {1: "联系 yes", 2: "未联系 no"},
    "resolved": {1: "已解决 yes", 2: "未解决 no"},
    "satisfaction": {1: "满意", 2: "基本满意", 3: "不满意"},
}


def percent(value: float | None) -> str:
    return "无数据" if value is None else f"{value:.1%}"


def local(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def named(word: enum.Enum | str | None, kind: type[enum.Enum] | None = None) -> Markup:
    """A word of the vocabulary as a person reads it: 一般 <span class="en">daily life</span>."""
    chinese, english = label(word, kind)
    if chinese == english:
        return Markup("{}").format(chinese)
    return Markup('{} <span class="en">{}</span>').format(chinese, english)


# English beside the Chinese words of a report's cells (the deadline lists' state and urgency)
BESIDE = {
    "超期": "overdue",
    "督办": "escalate",
    "预警": "warn",
    **{label(u)[0]: label(u)[1] for u in Urgency},
}

templates.env.filters["percent"] = percent
templates.env.globals.update(
    named=named,
    BESIDE=BESIDE,
    RequestType=RequestType,
    Urgency=Urgency,
    EventKind=EventKind,
    CallStep=CallStep,
    OUTCOME_NAMES=OUTCOME_NAMES,
    STATUS_NAMES=STATUS_NAMES,
    DIRECTION_NAMES=DIRECTION_NAMES,
    ANSWER_NAMES=ANSWER_NAMES,
)


def page(
    request: Request, name: str, viewer: Viewer | None, context: dict[str, Any], status: int = 200
) -> Response:
    """Render a console page with the viewer, the Asterisk link state and the CSRF token."""
    live = getattr(request.app.state, "live", None)
    config = request.app.state.config
    base = {
        "viewer": viewer,
        "asterisk_up": live.connected if live is not None else None,
        "tz": config.tz,
        "local": lambda value: local(value, config.tz),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
