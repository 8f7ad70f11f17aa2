"""The survey's rows: its call linked to the attempt, its answers, the opt-out list.

Each answer is saved the moment it is given, so a hang-up after Q1 keeps Q1;
a survey channel is accepted only for an attempt still dialing, and once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.vocabulary import AttemptState, CallDirection, Question
from db.calls import upsert_call_start
from db.models import Call, CallbackAttempt, DoNotCall, SurveyAnswer, Ticket, utcnow


class SurveyRefused(Exception):
    """A survey channel the store will not accept for an attempt; the message says why."""


def accept_survey_call(session: Session, attempt_id: int, uniqueid: str) -> CallbackAttempt:
    """The attempt, now in call on this channel; SurveyRefused when it is not its survey.

    Only an attempt still dialing becomes a survey, once: an attempt already in
    a call (a second survey for it) or finished (a late or forged answer) is
    refused and nothing changes.
    """
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        raise SurveyRefused(f"no callback attempt {attempt_id}")
    if attempt.state != AttemptState.DIALING:
        raise SurveyRefused(
            f"attempt {attempt_id} is {attempt.state.value}"
            + (f" ({attempt.outcome.value})" if attempt.outcome else "")
            + f", not dialing: channel {uniqueid} refused"
        )
    attempt.state = AttemptState.IN_CALL
    session.flush()
    return attempt


def survey_channel_matches(session: Session, attempt_id: int, uniqueid: str) -> bool:
    """True when the attempt has no survey call yet or its survey call is this channel."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        return False
    if attempt.call_id is None:
        return True
    return session.scalar(select(Call.uniqueid).where(Call.id == attempt.call_id)) == uniqueid


def link_survey_call(
    session: Session,
    attempt_id: int,
    uniqueid: str,
    number: str,
    recording: str | None,
    linkedid: str | None,
) -> None:
    """The survey's call row (outbound, with its recording), linked to the attempt."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        return
    ticket = session.get(Ticket, attempt.ticket_id)
    call = upsert_call_start(
        session,
        uniqueid=uniqueid,
        caller_number=ticket.caller_number if ticket else number,
        did=None,
        started_at=attempt.started_at or utcnow(),
        answered_at=utcnow(),
        linkedid=linkedid,
        recording_path=recording,
        direction=CallDirection.OUTBOUND,
    )
    call.ticket_id = attempt.ticket_id
    attempt.call_id = call.id
    attempt.node = attempt.node or call.node  # the node that answered, from the Uniqueid
    session.flush()


def save_answer(
    session: Session, attempt_id: int, question: Question, answer: int, via: str
) -> None:
    """Keep one answer per attempt and question (the first one given wins)."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        raise ValueError(f"no callback attempt {attempt_id}")
    try:
        with session.begin_nested():
            session.add(
                SurveyAnswer(
                    attempt_id=attempt_id,
                    ticket_id=attempt.ticket_id,
                    question=question,
                    answer=answer,
                    via=via,
                )
            )
    except IntegrityError:
        pass  # already saved: a replay of the same answer


def answers_of(session: Session, attempt_id: int) -> dict[Question, int]:
    rows = session.scalars(select(SurveyAnswer).where(SurveyAnswer.attempt_id == attempt_id))
    return {row.question: row.answer for row in rows}


def add_do_not_call(session: Session, number: str, reason: str) -> None:
    if session.get(DoNotCall, number) is None:
        session.add(DoNotCall(number=number, reason=reason))
        session.flush()


def is_do_not_call(session: Session, number: str) -> bool:
    return session.get(DoNotCall, number) is not None
