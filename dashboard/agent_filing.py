"""The agent's ticket form, bound to the call: drafts, and filing with one of three outcomes.

The call is never typed: its Uniqueid comes from the pop and is checked here
against what the agent really had, a CONNECT of queue_log under their login or
an `AgentCalled` the console saw (`AgentDesk`). A call has one ticket
(origin_uniqueid): the hang-up handler may have made it already (source
"agent", when the caller hung up before the agent filed), and filing fills
that one.

Outcomes (`core.vocabulary.Handling`):
- 直办 direct: answered on the call; the ticket is closed at once with how it
  ended (`closed_as`) and the reply the agent gave. It goes to no unit.
- 派单 dispatch: sent to a unit through `tickets.workflow.dispatch`, due by the
  working-day rules for the urgency the agent chose (`core.deadlines`).
- 并单 merge: the caller's matter is an open ticket of theirs already. The new
  ticket keeps the call (its recording, its agent, queue and times) with
  `merged_into_id` set, and is archived (归档) at once, not closed: it is no
  work of any unit, it never gets a callback survey of its own (the robot
  surveys closed tickets), and the open ticket records the repeat call as an
  urge (催办, `db.tickets.urge_ticket`), which is what a second call about an
  open matter is.

A knowledge-base entry used on the call (`dashboard.agent_kb`, the form's
`kb_offer`) answers a 咨询: the ticket is closed at once as 直办 已解释 with the
entry's answer as the reply (unless the agent wrote one), the entry's category if
the agent chose none, the entry's key and version in the close event's note, and
the offer row gets the ticket. For other request types the offer is linked to the
ticket and the outcome is the agent's (a 直办 close still names the entry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.store import fill_from_queue_log
from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import ClosedAs, EventKind, Handling, RequestType, TicketStatus, Urgency
from db.calls import call_by_uniqueid
from db.models import (
    Agent,
    Department,
    KbEntry,
    KbOffer,
    QueueLogEntry,
    Ticket,
    TicketDraft,
    utcnow,
)
from db.tickets import (
    OPEN_STATUSES,
    add_event,
    create_ticket_for_call,
    line_by_did,
    ticket_by_number,
    urge_ticket,
)
from db.workflow import WorkflowError, require
from kb.offers import mark_accepted
from tickets import workflow

DRAFT_MAX = 20000  # characters of a draft's JSON
S = TicketStatus


class FilingError(ValueError):
    """A form that cannot be filed; the message says why, in Chinese and English."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# -- the call's check ------------------------------------------------------------------
def connected_in_queue_log(session: Session, login: str, uniqueid: str) -> bool:
    """Did queue_log record this agent answering this call?"""
    return (
        session.scalar(
            select(QueueLogEntry.id)
            .where(
                QueueLogEntry.callid == uniqueid,
                QueueLogEntry.agent == login,
                QueueLogEntry.event == "CONNECT",
            )
            .limit(1)
        )
        is not None
    )


def check_call(session: Session, login: str, uniqueid: str, rung: bool) -> None:
    """Refuse a call this agent was neither connected to (queue_log) nor rung for (AMI)."""
    if not uniqueid or len(uniqueid) > 64:
        raise FilingError("没有绑定通话 / the form is bound to no call", 422)
    if rung or connected_in_queue_log(session, login, uniqueid):
        return
    raise FilingError(
        "这通电话不是您接听的，不能为它建单 / this agent was never connected to that call", 403
    )


# -- drafts ------------------------------------------------------------------------------
def save_draft(session: Session, agent: Agent, uniqueid: str, body: str) -> TicketDraft:
    """Keep the form as typed (JSON text), one draft per call, the agent's own."""
    if len(body) > DRAFT_MAX:
        raise FilingError("草稿过长 / the draft is too long", 413)
    try:
        if not isinstance(json.loads(body), dict):
            raise ValueError
    except ValueError:
        raise FilingError("草稿格式无效 / the draft is not a JSON object", 422) from None
    draft = session.scalars(select(TicketDraft).where(TicketDraft.uniqueid == uniqueid)).first()
    if draft is None:
        draft = TicketDraft(uniqueid=uniqueid, agent_id=agent.id, body=body)
        session.add(draft)
    elif draft.agent_id != agent.id:
        raise FilingError("这通电话的草稿属于另一位坐席 / another agent's draft", 403)
    draft.body = body
    draft.updated_at = utcnow()
    session.flush()
    return draft


def drafts_of(session: Session, agent: Agent, uniqueid: str = "") -> list[TicketDraft]:
    """The agent's drafts (one call's, or all), newest first."""
    statement = (
        select(TicketDraft)
        .where(TicketDraft.agent_id == agent.id)
        .order_by(TicketDraft.updated_at.desc(), TicketDraft.id.desc())
    )
    if uniqueid:
        statement = statement.where(TicketDraft.uniqueid == uniqueid)
    return list(session.scalars(statement))


# -- filing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    """The ticket form as posted (strings, checked by `file_ticket`)."""

    uniqueid: str
    request_type: str
    category: str = ""
    urgency: str = Urgency.DAILY_LIFE.value
    place: str = ""
    description: str = ""
    confidential: bool = False
    handling: str = Handling.DISPATCH.value
    closed_as: str = ""
    reply: str = ""
    department_id: int | None = None
    merge_into: str = ""  # the open ticket's number
    kb_offer: int | None = None  # the knowledge-base offer the agent used (agent_kb)


def _enum(kind: type[Any], value: str, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise FilingError(f"{what} 无效 / {what} is not one of the choices") from None


def close_on_call(
    session: Session,
    ticket: Ticket,
    closed_as: ClosedAs,
    reply: str,
    actor: str,
    answered_by: str = "",
) -> Ticket:
    """直办: an accepted ticket closed on the call by the agent who took it (no unit).

    TODO(lead): belongs in `tickets.workflow` beside `close` (a unit's close needs a
    signed ticket and a unit; this one needs neither).
    """
    require(ticket, "close on the call", (S.ACCEPTED,))
    if not reply.strip():
        raise WorkflowError(f"ticket {ticket.number}: closing needs the reply given to the caller")
    at = utcnow()
    ticket.status = S.CLOSED
    ticket.closed_at = at
    ticket.reply = reply
    ticket.closed_as = closed_as
    note = f"直办 {closed_as.value}" + (f" · {answered_by}" if answered_by else "")
    add_event(session, ticket, EventKind.CLOSED, actor=actor, at=at, note=note)
    return ticket


def used_entry(
    session: Session, offer_id: int, uniqueid: str, agent_id: int
) -> tuple[KbOffer, KbEntry]:
    """This agent's knowledge-base offer for this call, not yet on any ticket."""
    offer = session.get(KbOffer, offer_id)
    if (
        offer is None
        or offer.channel != "agent"
        or offer.agent_id != agent_id
        or offer.ticket_id is not None
        or offer.uniqueid not in (None, uniqueid)
    ):
        raise FilingError(
            "知识库条目的使用记录不属于这通电话 / that knowledge-base use is not this call's"
        )
    entry = session.get(KbEntry, offer.entry_id)
    assert entry is not None  # a foreign key
    return offer, entry


def entry_note(entry: KbEntry) -> str:
    """How the ticket's events name the entry that answered: key and version."""
    return f"知识库 {entry.key} v{entry.version}（{entry.title}）"


def _answer_with(form: Form, entry: KbEntry) -> Form:
    """A 咨询 answered from the knowledge base: 直办 已解释, the entry's answer as the reply
    unless the agent wrote one, the entry's category unless the agent chose one."""
    return replace(
        form,
        handling=Handling.DIRECT.value,
        closed_as=ClosedAs.EXPLAINED.value,
        reply=form.reply.strip() or entry.answer_zh,
        category=form.category.strip() or (entry.category or ""),
    )


def merge_into(session: Session, ticket: Ticket, target: Ticket, actor: str) -> Ticket:
    """并单: the new ticket is archived as merged into the caller's open ticket, which is urged.

    TODO(lead): belongs in `tickets.workflow` too.
    """
    require(ticket, "merge", (S.ACCEPTED,))
    if target.status not in OPEN_STATUSES:
        raise WorkflowError(
            f"ticket {target.number} is {target.status.value}: merge into an open one"
        )
    at = utcnow()
    ticket.merged_into_id = target.id
    ticket.status = S.ARCHIVED
    ticket.closed_at = at
    add_event(
        session, ticket, EventKind.ARCHIVED, actor=actor, at=at, note=f"并单 → {target.number}"
    )
    urge_ticket(session, target, actor)  # a second call about an open matter: 催办
    return ticket


def file_ticket(
    session: Session,
    config: HotlineConfig,
    agent: Agent,
    form: Form,
    actor: str,
    fallback_number: str = "",
) -> Ticket:
    """Fill (or make) the call's ticket from the form and take its outcome, in one transaction."""
    request_type = _enum(RequestType, form.request_type, "诉求类型 request type")
    used = used_entry(session, form.kb_offer, form.uniqueid, agent.id) if form.kb_offer else None
    if used is not None and request_type == RequestType.CONSULTATION:
        form = _answer_with(form, used[1])
    urgency = _enum(Urgency, form.urgency, "紧急程度 urgency")
    handling = _enum(Handling, form.handling, "办理方式 handling")
    if not form.description.strip():
        raise FilingError("请填写诉求内容 / the description is empty")
    call = call_by_uniqueid(session, form.uniqueid)
    number = (call.caller_number if call else None) or fallback_number
    accepted = call.started_at if call is not None else utcnow()
    ticket, _ = create_ticket_for_call(
        session,
        form.uniqueid,
        caller_number=number or "unknown",
        local_day=accepted.astimezone(config.tz).date(),
        accepted_at=accepted,
        line=line_by_did(session, call.did) if call is not None and call.did else None,
        source="agent",
        actor=actor,
    )
    if ticket.status != S.ACCEPTED:
        raise FilingError(
            f"这通电话已建单 {ticket.number}（{ticket.status.value}） / the call's ticket "
            f"{ticket.number} is filed already",
            409,
        )
    if ticket.agent_id not in (None, agent.id):
        raise FilingError("这通电话的工单属于另一位坐席 / another agent's ticket", 403)
    ticket.request_type = request_type
    if form.category.strip():  # the agent chose it: staff-set, over the line's default
        ticket.category, ticket.category_source = form.category.strip()[:100], "staff"
        ticket.category_confidence = None
    ticket.urgency = urgency
    ticket.place = form.place.strip()[:200] or None
    ticket.description = form.description.strip()
    ticket.confidential = form.confidential
    ticket.handling = handling
    ticket.agent_id = agent.id
    if not ticket.recording_path and call is not None:  # the conversation is the request
        ticket.recording_path = call.recording_path
    # who answered, in which queue, after how long, for how long (queue_log, when read)
    fill_from_queue_log(session, ticket)
    ticket.agent_id = ticket.agent_id or agent.id
    ticket.due_at = due_at(ticket.accepted_at, urgency, config.deadlines, config.tz)
    try:
        if handling == Handling.DIRECT:
            closed_as = _enum(ClosedAs, form.closed_as, "办结结果 closed as")
            note = entry_note(used[1]) if used is not None else ""
            close_on_call(session, ticket, closed_as, form.reply.strip(), actor, note)
        elif handling == Handling.DISPATCH:
            unit = session.get(Department, form.department_id) if form.department_id else None
            if unit is None:
                raise FilingError("请选择承办单位 / choose the unit to dispatch to")
            workflow.dispatch(session, ticket, unit, actor, due_at=ticket.due_at)
        else:
            target = ticket_by_number(session, form.merge_into.strip())
            if target is None or target.id == ticket.id or target.caller_number != number:
                raise FilingError(
                    "请选择该来电人的一张未办结工单 / choose an open ticket of this caller"
                )
            merge_into(session, ticket, target, actor)
    except WorkflowError as exc:
        raise FilingError(str(exc), 409) from None
    if used is not None:
        _link_offer(session, used[0], ticket)
    for draft in drafts_of(session, agent, form.uniqueid):
        session.delete(draft)
    session.flush()
    return ticket


def _link_offer(session: Session, offer: KbOffer, ticket: Ticket) -> None:
    """The offer gets the ticket (and the call, if it was used before the form was bound)."""
    offer.uniqueid = offer.uniqueid or ticket.origin_uniqueid
    if ticket.caller_number != "unknown":
        offer.caller_number = offer.caller_number or ticket.caller_number
    mark_accepted(session, offer.id, ticket.id)


def when(value: datetime | None, config: HotlineConfig) -> str:
    return value.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if value else ""
