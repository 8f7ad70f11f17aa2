"""What the main work-order platform sends: departments and tickets, validated at the edge.

One pydantic model per record, the same for CSV rows, JSON files and the HTTP
endpoint, so a field means the same thing whichever way it arrives. Request
types, urgencies, statuses and levels are accepted in English or as the
platform's Chinese labels (咨询, 紧急, 办结, 街道 ...). Times without a zone
are read as hotline local time, which is what a secretary's spreadsheet holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from core import phone_numbers
from core.vocabulary import ClosedAs, EventKind, Level, RequestType, TicketStatus, Urgency

CHINESE_REQUEST_TYPES = {
    "咨询": RequestType.CONSULTATION,
    "求助": RequestType.HELP,
    "投诉": RequestType.COMPLAINT,
    "举报": RequestType.REPORT,
    "建议": RequestType.SUGGESTION,
}
CHINESE_URGENCIES = {
    "紧急": Urgency.EMERGENCY,
    "一般": Urgency.DAILY_LIFE,
    "民生": Urgency.DAILY_LIFE,
    "复杂": Urgency.COMPLEX,
}
CHINESE_STATUSES = {
    "受理": TicketStatus.ACCEPTED,
    "派单": TicketStatus.DISPATCHED,
    "转办": TicketStatus.DISPATCHED,
    "签收": TicketStatus.SIGNED,
    "办理": TicketStatus.IN_PROGRESS,
    "办理中": TicketStatus.IN_PROGRESS,
    "退单": TicketStatus.RETURNED,
    "办结": TicketStatus.CLOSED,
    "归档": TicketStatus.ARCHIVED,
}
CHINESE_CLOSED_AS = {
    "已解决": ClosedAs.RESOLVED,
    "解决": ClosedAs.RESOLVED,
    "已解释": ClosedAs.EXPLAINED,
    "解释": ClosedAs.EXPLAINED,
    "无法解决": ClosedAs.UNRESOLVABLE,
    "不能解决": ClosedAs.UNRESOLVABLE,
}
LEVEL_NAMES = {
    "region": 1,
    "自治区": 1,
    "city": 2,
    "市": 2,
    "district": 3,
    "旗区": 3,
    "区县": 3,
    "township": 4,
    "street": 4,
    "街道": 4,
    "苏木乡镇": 4,
    "village": 5,
    "community": 5,
    "社区": 5,
    "嘎查村": 5,
}


def _label(mapping: dict[str, Any]) -> BeforeValidator:
    """Accept the English value or the platform's Chinese label; blank means not given."""

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            return mapping.get(value, value)
        return value

    return BeforeValidator(convert)


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _in_hotline_zone(value: datetime | None, info: ValidationInfo) -> datetime | None:
    """A time without a zone is hotline local time (the zone comes in the context)."""
    zone = (info.context or {}).get("zone")
    if value is None or value.tzinfo is not None or zone is None:
        return value
    return value.replace(tzinfo=zone)


Text = Annotated[str | None, BeforeValidator(_blank_is_none)]
Instant = Annotated[datetime, AfterValidator(_in_hotline_zone)]
When = Annotated[datetime | None, BeforeValidator(_blank_is_none), AfterValidator(_in_hotline_zone)]


# per-record bounds: a ticket is a request and its history, not a data dump; every text
# field has one (a code or a name as long as its column, free text a few thousand)
MAX_TEXT = 4000
MAX_NOTE = 1000
MAX_EVENTS = 200
MAX_CALLBACKS = 50
MAX_CODE = 64  # department codes, peer groups (the columns' length)
MAX_CATEGORY = 100
MAX_ACTOR = 100


# optional texts of at most so many characters, blank meaning not given (the bound sits on
# the text itself, so a refusal reads "String should have at most N characters")
_blank = BeforeValidator(_blank_is_none)
Code = Annotated[Annotated[str, Field(max_length=MAX_CODE)] | None, _blank]
Category = Annotated[Annotated[str, Field(max_length=MAX_CATEGORY)] | None, _blank]
Note = Annotated[Annotated[str, Field(max_length=MAX_NOTE)] | None, _blank]
LongText = Annotated[Annotated[str, Field(max_length=MAX_TEXT)] | None, _blank]


def _phone_number(value: str) -> str:
    """Digits with an optional leading +: it will become a dial string and an AMI field.

    The refusal names the field, never the value (a citizen's number, or whatever
    was sent in its place, is not echoed back)."""
    value = value.strip()
    if not phone_numbers.is_valid(value):
        raise ValueError(
            "is not a phone number (digits, an optional leading +, "
            f"3 to {phone_numbers.MAX_DIGITS} digits)"
        )
    return value


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DepartmentRecord(Record):
    """A unit of the five-level tree; the parent must exist or come earlier in the import."""

    kind: Literal["department"] = "department"
    code: str = Field(min_length=1, max_length=MAX_CODE)
    name: str = Field(min_length=1, max_length=200)
    level: Annotated[int, _label(LEVEL_NAMES), Field(ge=1, le=5)]
    parent_code: Code = None
    peer_group: Annotated[
        Annotated[str, Field(max_length=MAX_CODE)],
        BeforeValidator(lambda v: _blank_is_none(v) or "default"),
    ] = "default"

    @model_validator(mode="after")
    def _parent_fits_level(self) -> DepartmentRecord:
        if self.level == Level.REGION and self.parent_code:
            raise ValueError("a level-1 unit (region) has no parent")
        if self.level > Level.REGION and not self.parent_code:
            raise ValueError(f"a level-{self.level} unit needs parent_code")
        return self


class EventRecord(Record):
    """One lifecycle step as the platform recorded it."""

    kind: EventKind
    at: Instant
    actor: str = Field("platform", max_length=MAX_ACTOR)
    department_code: Code = None
    note: Note = None


class CallbackRecord(Record):
    """A valid callback made on the platform (by a person or another robot)."""

    at: Instant
    contacted: int = Field(ge=1, le=2)  # 1 contacted in time, 2 not
    resolved: int = Field(ge=1, le=2)  # 1 resolved, 2 not
    satisfaction: int = Field(ge=1, le=3)  # 1 satisfied, 2 basically, 3 not


class TicketRecord(Record):
    """A ticket with its current state, its lifecycle events and any callbacks."""

    kind: Literal["ticket"] = "ticket"
    external_id: str = Field(min_length=1, max_length=100)
    caller_number: Annotated[str, AfterValidator(_phone_number)]
    accepted_at: Instant
    request_type: Annotated[RequestType | None, _label(CHINESE_REQUEST_TYPES)] = None
    category: Category = None
    urgency: Annotated[Urgency, _label(CHINESE_URGENCIES)] = Urgency.DAILY_LIFE
    description: LongText = None
    department_code: Code = None
    status: Annotated[TicketStatus, _label(CHINESE_STATUSES)] = TicketStatus.ACCEPTED
    due_at: When = None
    closed_at: When = None
    reply: LongText = None
    # how a closed ticket ended (已解决/已解释/无法解决), and where the problem is (a
    # department code of the tree; without it the area comes from the unit or the text)
    closed_as: Annotated[ClosedAs | None, _label(CHINESE_CLOSED_AS)] = None
    area_code: Code = None
    events: list[EventRecord] = Field(default=[], max_length=MAX_EVENTS)
    callbacks: list[CallbackRecord] = Field(default=[], max_length=MAX_CALLBACKS)

    @model_validator(mode="after")
    def _consistent(self) -> TicketRecord:
        closed = self.status in (TicketStatus.CLOSED, TicketStatus.ARCHIVED)
        if closed and self.closed_at is None:
            raise ValueError(f"status {self.status.value} needs closed_at")
        if self.closed_at is not None and self.closed_at < self.accepted_at:
            raise ValueError("closed_at is before accepted_at")
        if self.status != TicketStatus.ACCEPTED and not self.department_code:
            raise ValueError(f"status {self.status.value} needs department_code")
        if self.closed_as is not None and not closed:
            raise ValueError(f"closed_as is only for a closed ticket (status {self.status.value})")
        if self.callbacks and not closed:
            raise ValueError("callbacks are only made on closed tickets")
        return self


# CSV files are flat: a ticket's events come from these timestamp columns.
CSV_EVENT_COLUMNS = {
    "dispatched_at": EventKind.DISPATCHED,
    "signed_at": EventKind.SIGNED,
    "closed_at": EventKind.CLOSED,
    "archived_at": EventKind.ARCHIVED,
}
CSV_CALLBACK_COLUMNS = ("callback_at", "contacted", "resolved", "satisfaction")


def ticket_from_csv_row(row: dict[str, str]) -> dict[str, Any]:
    """A flat CSV row as the nested shape of `TicketRecord` (events, one callback)."""
    skip = {*CSV_CALLBACK_COLUMNS, *CSV_EVENT_COLUMNS}
    # an empty cell means "not given", so the field's default applies
    data: dict[str, Any] = {k: v for k, v in row.items() if k not in skip and v.strip()}
    data["closed_at"] = row.get("closed_at")
    events = []
    for column, kind in CSV_EVENT_COLUMNS.items():
        if (row.get(column) or "").strip():
            events.append(
                {"kind": kind, "at": row[column], "department_code": row.get("department_code")}
            )
    data["events"] = events
    if (row.get("callback_at") or "").strip():
        data["callbacks"] = [
            {
                "at": row["callback_at"],
                "contacted": row.get("contacted"),
                "resolved": row.get("resolved"),
                "satisfaction": row.get("satisfaction"),
            }
        ]
    return data
