"""The survey call (FastAGI route `survey`): three questions, each answer saved as given.

您好，我是12345热线的回访小助手…… then: contacted in time? (1/2), resolved?
(1/2), satisfied? (1 satisfied / 2 basically / 3 not). A timeout or a wrong
key repeats a question once; then the question is recorded as unanswered
(-1 no key in time, -2 wrong key, the vendors' convention). The opt-out key
ends the call and puts the number on the do-not-call list. A hang-up at any
point keeps the answers already given; `survey-end` then gives the attempt
its outcome (partial). Every write goes through `callback_robot.store`: retried,
then spooled while the database is away, never lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import SurveyRefused
from callback_robot.store import (
    AttemptEnded,
    RobotStore,
    SurveyAnswerGiven,
    SurveyCompleted,
    SurveyLinked,
    SurveyOptedOut,
)
from callback_robot.tokens import token_matches
from core.config import HotlineConfig
from core.vocabulary import AttemptOutcome, Question
from prompts.build import PromptLibrary
from speech.recognition import SpeechModel, recognize
from telephony.agi import AGI
from telephony.menu import KeyStatus, Menu, MenuExit, collect_key, play

QUESTIONS: list[tuple[Question, str, str]] = [
    (Question.CONTACTED, "survey_contacted", "12"),
    (Question.RESOLVED, "survey_resolved", "12"),
    (Question.SATISFACTION, "survey_satisfied", "123"),
]
NO_KEY, WRONG_KEY = -1, -2


class OptedOut(Exception):
    """The citizen pressed the opt-out key."""


class SurveyFlow:
    def __init__(
        self,
        config: HotlineConfig,
        prompts: PromptLibrary,
        sessions: sessionmaker[Session],
        speech_model: SpeechModel,
        store: RobotStore | None = None,
    ) -> None:
        self.config = config
        self.robot = config.robot
        self.prompts = prompts
        self.sessions = sessions
        self.speech_model = speech_model
        self.store = store or RobotStore(config, sessions)
        self.key = config.agi_key()

    async def __call__(self, agi: AGI) -> None:
        try:
            attempt_id = await robot_attempt(agi, self.key)
            ticket_id = await self.store.accept_survey(attempt_id, agi.uniqueid)
        except SurveyRefused as exc:
            agi.log.warning("SUSPICIOUS survey refused, nothing changed: %s", exc)
            return
        base = await agi.get_variable("HOTLINE_BASE")
        linkedid = await agi.get_full_variable("${CHANNEL(linkedid)}")
        number = agi.env.get("agi_dnid") or agi.channel
        await self.store.record(
            SurveyLinked(
                attempt_id, agi.uniqueid, number, f"{base}.wav" if base else None, linkedid
            )
        )
        try:
            await self.introduce(agi)
            answers = {}
            for question, prompt, keys in QUESTIONS:
                answers[question], via = await self.ask(agi, prompt, keys)
                if answers[question] == NO_KEY and base:
                    answers[question], via = await self.by_voice(agi, question, base)
                await self.store.record(
                    SurveyAnswerGiven(attempt_id, question.value, answers[question], via)
                )
                await agi.set_variable(
                    f"HOTLINE_ANSWER_{question.value.upper()}", str(answers[question])
                )
        except OptedOut:
            await self.opt_out(agi, attempt_id, ticket_id)
            return
        await self.store.record(
            SurveyCompleted(attempt_id, ticket_id, {q.value: a for q, a in answers.items()})
        )
        await self.play(agi, "survey_thanks")

    async def introduce(self, agi: AGI) -> None:
        """The robot says who it is; the opt-out key interrupts it (and ends the survey)."""
        try:
            await play(agi, self.prompts.path("survey_intro"), exit_keys=self.robot.opt_out_key)
        except MenuExit:
            raise OptedOut from None

    async def play(self, agi: AGI, prompt: str) -> None:
        await agi.stream_file(self.prompts.path(prompt))

    async def ask(self, agi: AGI, prompt: str, keys: str) -> tuple[int, str]:
        """One question: a valid key, else -1 (no key) or -2 (wrong key) after one repeat."""
        menu = Menu(
            name=prompt,
            prompt=self.prompts.path(prompt),
            keys=keys,
            timeout_ms=self.robot.answer_timeout_ms,
            tries=2,
            exit_keys=self.robot.opt_out_key,
        )
        try:
            answer = await collect_key(agi, menu)
        except MenuExit:
            raise OptedOut from None
        if answer.key is not None:
            return int(answer.key), "dtmf"
        return (NO_KEY if answer.status is KeyStatus.NO_KEY else WRONG_KEY), "none"

    async def by_voice(self, agi: AGI, question: Question, base: str) -> tuple[int, str]:
        """No key twice: ask for a spoken answer, recognised under a grammar of the answers."""
        model = await asyncio.to_thread(self.speech_model)
        if model is None:
            return NO_KEY, "none"
        words = self.config.speech.survey_words[question.value]
        await self.play(agi, "survey_speak_answer")
        path = f"{base}-{question.value}"
        await agi.record_file(
            path, "wav", "#", self.config.speech.answer_seconds * 1000, beep=True, silence_s=2
        )
        heard = await asyncio.to_thread(
            recognize,
            model,
            Path(path + ".wav"),
            [w for options in words.values() for w in options] + ["[unk]"],
        )
        agi.log.info("survey %s: heard %r", question.value, heard)
        for answer, options in sorted(words.items(), key=lambda item: -max(map(len, item[1]))):
            if any(option in heard for option in options):
                return int(answer), "speech"
        return NO_KEY, "none"

    async def opt_out(self, agi: AGI, attempt_id: int, ticket_id: int) -> None:
        await self.store.record(SurveyOptedOut(attempt_id, ticket_id))
        await agi.stream_file(self.prompts.path("survey_opted_out"))


async def robot_attempt(agi: AGI, key: str) -> int:
    """The attempt this channel was originated for, proven by its token; else SurveyRefused."""
    raw = await agi.get_variable("HOTLINE_ATTEMPT") or ""
    token = await agi.get_variable("HOTLINE_ATTEMPT_TOKEN")
    if not raw.isdigit() or not token_matches(key, int(raw), token):
        raise SurveyRefused(
            f"channel {agi.uniqueid} claims attempt {raw[:20]!r} without the robot's token"
        )
    return int(raw)


class SurveyEndRoute:
    """`survey-end`, from the survey context's `h` extension: a hang-up mid-survey is partial."""

    def __init__(self, store: RobotStore, key: str) -> None:
        self.store = store
        self.key = key

    async def __call__(self, agi: AGI) -> None:
        try:
            attempt_id = await robot_attempt(agi, self.key)
            if not await self.store.survey_channel_matches(attempt_id, agi.uniqueid):
                raise SurveyRefused(
                    f"attempt {attempt_id} is surveyed on another channel, not {agi.uniqueid}"
                )
        except SurveyRefused as exc:
            agi.log.warning("SUSPICIOUS survey end refused, nothing changed: %s", exc)
            return
        cause = await agi.get_variable("HANGUPCAUSE")
        # answered but not finished (with or without answers so far): partial; an
        # attempt the survey already completed or opted out keeps its outcome
        stored = await self.store.record(
            AttemptEnded(attempt_id, AttemptOutcome.PARTIAL.value, cause or None)
        )
        agi.log.info("survey attempt %s ended (%s)", attempt_id, "stored" if stored else "spooled")
