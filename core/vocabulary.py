"""The domain's vocabulary: the words every floor shares, as enums.

Tickets, calls and callbacks are described with these in the store, the flows,
the reports and the dialplan renderer alike, so a word is spelled in one place.
The values are what the database stores: renaming a value is a migration.
"""

from __future__ import annotations

import enum


class Level(enum.IntEnum):
    """The five-level network: region -> city -> district -> township/street -> village."""

    REGION = 1
    CITY = 2
    DISTRICT = 3
    TOWNSHIP = 4
    VILLAGE = 5


class RequestType(enum.StrEnum):
    CONSULTATION = "consultation"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议


class Urgency(enum.StrEnum):
    EMERGENCY = "emergency"  # 1 working day
    DAILY_LIFE = "daily_life"  # 3 working days
    COMPLEX = "complex"  # 7 calendar days


class TicketStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # 受理
    DISPATCHED = "dispatched"  # 派单
    SIGNED = "signed"  # 签收
    IN_PROGRESS = "in_progress"  # 办理
    RETURNED = "returned"  # 退单
    CLOSED = "closed"  # 办结
    ARCHIVED = "archived"  # 归档


class EventKind(enum.StrEnum):
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    RETURNED = "returned"
    REDISPATCHED = "redispatched"
    URGED = "urged"
    SUPERVISED = "supervised"
    CLOSED = "closed"
    REWORK = "rework"
    SURVEYED = "surveyed"
    ARCHIVED = "archived"
    DISPATCHED_ABOVE = "dispatched_above"  # 双派单: the level above is sent a copy to oversee
    RETURN_REJECTED = "return_rejected"  # a 退单 judged improper: counted against the unit


class TranscriptStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # no speech model configured


class CallDirection(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AttemptState(enum.StrEnum):
    QUEUED = "queued"
    DIALING = "dialing"
    IN_CALL = "in_call"
    DONE = "done"


class AttemptOutcome(enum.StrEnum):
    COMPLETED = "completed"
    PARTIAL = "partial"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion or a channel that could not be created
    OPTED_OUT = "opted_out"


class AgentState(enum.StrEnum):
    """An agent's state, each change recorded with its time (from queue_log and AMI)."""

    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"  # with a reason: break, training, meeting, rona (rang out)


class Handling(enum.StrEnum):
    """What the agent did with the request on the call."""

    DIRECT = "direct"  # 直办: answered on the call, closed at once
    DISPATCH = "dispatch"  # 派单: sent to a unit of the tree
    MERGE = "merge"  # 并单: joined to an open ticket of the same matter


# A ticket the knowledge base answered on the call (a waiting caller heard an entry and
# pressed 1): closed at once with no unit, so it is counted but in no unit's rates, and
# the robot does not call the citizen back to survey a recorded answer.
KB_ANSWERED_SOURCE = "ivr-kb"


class ClosedAs(enum.StrEnum):
    """How a closed ticket ended."""

    RESOLVED = "resolved"  # 已解决
    EXPLAINED = "explained"  # 已解释
    UNRESOLVABLE = "unresolvable"  # 无法解决


class Question(enum.StrEnum):
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    SATISFACTION = "satisfaction"


class CallStep(enum.StrEnum):
    """Where a citizen's call is: set as HOTLINE_STEP by the flow and by the dialplan.

    The hang-up handler and the reconciler read it back to say where a caller left;
    the dialplan renderer writes FALLBACK into the dialplan's globals.
    """

    GREETING = "greeting"
    MENU = "menu"
    TYPE = "type"
    URGENCY = "urgency"
    RECORDING = "recording"
    READBACK = "readback"
    PROGRESS = "progress"
    URGE = "urge"
    QUEUE = "queue"
    AGENT = "agent"  # an agent answered (app_queue connected the call)
    FALLBACK = "fallback"  # the dialplan took the message itself (FastAGI down or failed)
    UNKNOWN = "unknown"  # the reconciler found the call with no step recorded
    NO_CALL_ROW = "no_call_row"  # the reconciler found only recordings: FastAGI never saw it

    def describe(self) -> str:
        """The step as a ticket's description says it."""
        return STEP_DESCRIPTIONS.get(self, self.value)

    @classmethod
    def read(cls, value: str | None) -> CallStep:
        """A step as the channel or the store had it; anything else is UNKNOWN."""
        try:
            return cls(value or "")
        except ValueError:
            return cls.UNKNOWN


STEP_DESCRIPTIONS = {
    CallStep.UNKNOWN: "unknown (found by the reconciler)",
    CallStep.NO_CALL_ROW: "no call row: the FastAGI server never saw this call",
}


# -- labels: how a person reads each word (Chinese first, English beside it) --------------
# Per kind: StrEnum members equal their values, so TicketStatus.DISPATCHED and
# EventKind.DISPATCHED would be one key of a flat dict.
LABELS: dict[type[enum.Enum], dict[str, tuple[str, str]]] = {
    RequestType: {
        RequestType.CONSULTATION.value: ("咨询", "consultation"),
        RequestType.HELP.value: ("求助", "help"),
        RequestType.COMPLAINT.value: ("投诉", "complaint"),
        RequestType.REPORT.value: ("举报", "report"),
        RequestType.SUGGESTION.value: ("建议", "suggestion"),
    },
    Urgency: {
        Urgency.EMERGENCY.value: ("紧急", "emergency"),
        Urgency.DAILY_LIFE.value: ("一般", "daily life"),
        Urgency.COMPLEX.value: ("复杂", "complex"),
    },
    TicketStatus: {
        TicketStatus.ACCEPTED.value: ("受理", "accepted"),
        TicketStatus.DISPATCHED.value: ("已派单", "dispatched"),
        TicketStatus.SIGNED.value: ("已签收", "signed"),
        TicketStatus.IN_PROGRESS.value: ("办理中", "in progress"),
        TicketStatus.RETURNED.value: ("已退单", "returned"),
        TicketStatus.CLOSED.value: ("已办结", "closed"),
        TicketStatus.ARCHIVED.value: ("已归档", "archived"),
    },
    EventKind: {
        EventKind.ACCEPTED.value: ("受理", "accepted"),
        EventKind.DISPATCHED.value: ("派单", "dispatched"),
        EventKind.SIGNED.value: ("签收", "signed"),
        EventKind.RETURNED.value: ("退单", "returned"),
        EventKind.REDISPATCHED.value: ("重新派单", "re-dispatched"),
        EventKind.URGED.value: ("催办", "urged"),
        EventKind.SUPERVISED.value: ("督办", "supervised"),
        EventKind.CLOSED.value: ("办结", "closed"),
        EventKind.REWORK.value: ("发回重办", "sent back for rework"),
        EventKind.SURVEYED.value: ("回访", "surveyed"),
        EventKind.ARCHIVED.value: ("归档", "archived"),
        EventKind.DISPATCHED_ABOVE.value: ("双派单", "copy to the level above"),
        EventKind.RETURN_REJECTED.value: ("不当退单", "improper return"),
    },
    CallDirection: {
        CallDirection.INBOUND.value: ("市民来电", "citizen call"),
        CallDirection.OUTBOUND.value: ("回访", "robot survey"),
    },
    AttemptOutcome: {
        AttemptOutcome.COMPLETED.value: ("完成", "completed"),
        AttemptOutcome.PARTIAL.value: ("中途挂断", "partial"),
        AttemptOutcome.NO_ANSWER.value: ("无人接听", "no answer"),
        AttemptOutcome.BUSY.value: ("忙", "busy"),
        AttemptOutcome.FAILED.value: ("失败", "failed"),
        AttemptOutcome.OPTED_OUT.value: ("拒访", "opted out"),
    },
    AgentState: {
        AgentState.LOGGED_OUT.value: ("未登录", "logged out"),
        AgentState.READY.value: ("空闲", "ready"),
        AgentState.RINGING.value: ("振铃", "ringing"),
        AgentState.ON_CALL.value: ("通话中", "on call"),
        AgentState.WRAP_UP.value: ("话后处理", "wrap-up"),
        AgentState.PAUSED.value: ("小休", "paused"),
    },
    Handling: {
        Handling.DIRECT.value: ("直办", "answered on the call"),
        Handling.DISPATCH.value: ("派单", "dispatched"),
        Handling.MERGE.value: ("并单", "merged"),
    },
    ClosedAs: {
        ClosedAs.RESOLVED.value: ("已解决", "resolved"),
        ClosedAs.EXPLAINED.value: ("已解释", "explained"),
        ClosedAs.UNRESOLVABLE.value: ("无法解决", "unresolvable"),
    },
    CallStep: {
        CallStep.GREETING.value: ("问候语", "greeting"),
        CallStep.MENU.value: ("主菜单", "menu"),
        CallStep.TYPE.value: ("诉求类型", "request type"),
        CallStep.URGENCY.value: ("紧急程度", "urgency"),
        CallStep.RECORDING.value: ("录音留言", "recording"),
        CallStep.READBACK.value: ("播报工单号", "ticket read back"),
        CallStep.PROGRESS.value: ("查询进度", "progress"),
        CallStep.URGE.value: ("催办", "urge"),
        CallStep.QUEUE.value: ("排队等坐席", "agent queue"),
        CallStep.AGENT.value: ("坐席接听", "agent answered"),
        CallStep.FALLBACK.value: ("拨号计划留言", "dialplan fallback"),
        CallStep.UNKNOWN.value: ("未知", "unknown"),
        CallStep.NO_CALL_ROW.value: ("无通话记录", "no call row"),
    },
}


def label(word: enum.Enum | str | None, kind: type[enum.Enum] | None = None) -> tuple[str, str]:
    """(Chinese, English) for a word of the vocabulary, or for its stored value given its kind.

    An unknown value is its own label in both languages (never an error on a page).
    """
    if word is None:
        return ("", "")
    if isinstance(word, enum.Enum):
        kind, value = type(word), str(word.value)
    else:
        value = word
    found = LABELS.get(kind, {}).get(value) if kind is not None else None
    return found or (value, value)
