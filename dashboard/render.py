"""The templates every console page shares, their filters and the common context."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from dashboard.auth import Viewer

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

OUTCOME_NAMES = {
    "completed": "完成 completed",
    "partial": "中途挂断 partial",
    "no_answer": "无人接听 no answer",
    "busy": "忙 busy",
    "failed": "失败 failed",
    "opted_out": "拒访 opted out",
}
STATUS_NAMES = {
    "accepted": "受理 accepted",
    "dispatched": "已派单 dispatched",
    "signed": "已签收 signed",
    "in_progress": "办理中 in progress",
    "returned": "已退单 returned",
    "closed": "已办结 closed",
    "archived": "已归档 archived",
}
DIRECTION_NAMES = {"inbound": "市民来电 citizen call", "outbound": "回访 robot survey"}
ANSWER_NAMES = {
    "contacted": {1: "联系 yes", 2: "未联系 no"},
    "resolved": {1: "已解决 yes", 2: "未解决 no"},
    "satisfaction": {1: "满意", 2: "基本满意", 3: "不满意"},
}


def percent(value: float | None) -> str:
    return "无数据" if value is None else f"{value:.1%}"


def local(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if value else ""


templates.env.filters["percent"] = percent
templates.env.globals.update(
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
