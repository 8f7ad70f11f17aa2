"""The knowledge base's matcher on the shipped sample and a held-out set it never saw:
top-1 ≥ 90 %, top-3 ≥ 97 % on 200 unseen phrasings; an answer offered for ≤ 5 % of 60
out-of-scope requests at the configured threshold."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from core.config import KbConfig
from kb.matching import Bm25, Document, Matcher, normalise, offered, sounds

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "kb" / "sample_entries.yaml"
EVAL = ROOT / "tests" / "data" / "kb_eval.yaml"


@functools.cache
def sample_matcher() -> Matcher:
    entries = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["entries"]
    return Matcher(
        [
            Document(e["key"], e["title"], tuple(e["phrasings"]), tuple(map(str, e["keywords"])))
            for e in entries
        ]
    )


@functools.cache
def held_out() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(EVAL.read_text(encoding="utf-8"))


def test_the_held_out_set_is_unseen_and_covers_every_entry() -> None:
    entries = {e["key"]: e for e in yaml.safe_load(SAMPLE.read_text())["entries"]}
    assert len(entries) == 40
    questions = held_out()["in_scope"]
    assert set(questions) == set(entries)
    for key, phrasings in questions.items():
        assert len(phrasings) == 5, key
        known = {normalise(p) for p in (entries[key]["title"], *entries[key]["phrasings"])}
        assert not known & {normalise(p) for p in phrasings}, key
    assert len(held_out()["out_of_scope"]) == 60


def test_unseen_phrasings_find_their_entry() -> None:
    matcher = sample_matcher()
    top1 = top3 = total = 0
    for key, phrasings in held_out()["in_scope"].items():
        for phrasing in phrasings:
            ranked = [m.entry_key for m in matcher.search(phrasing, 3)]
            top1 += ranked[0] == key
            top3 += key in ranked
            total += 1
    assert total == 200
    assert top1 / total >= 0.90, top1
    assert top3 / total >= 0.97, top3


def test_out_of_scope_requests_are_rarely_answered_at_the_default_threshold() -> None:
    matcher = sample_matcher()
    threshold = KbConfig().threshold
    answered = [q for q in held_out()["out_of_scope"] if offered(matcher.search(q, 1), threshold)]
    assert len(answered) <= 0.05 * 60, answered


def test_most_correct_answers_clear_the_threshold() -> None:
    # the threshold must not silence the knowledge base: a right first match is offered
    matcher = sample_matcher()
    threshold = KbConfig().threshold
    cleared = sum(
        bool(offered([m for m in matcher.search(p, 1) if m.entry_key == key], threshold))
        for key, phrasings in held_out()["in_scope"].items()
        for p in phrasings
    )
    assert cleared >= 0.8 * 200, cleared


def test_fillers_do_not_change_the_ranking() -> None:
    matcher = sample_matcher()
    plain = matcher.search("暖气不热找谁", 3)
    padded = matcher.search("嗯，那个，我想问一下，就是暖气不热找谁啊", 3)
    assert [m.entry_key for m in plain] == [m.entry_key for m in padded]
    assert normalise("请问，那个 暖气") == "暖气"


@pytest.mark.parametrize("heard", ["暖汽不热找谁", "暖器不热找谁"])
def test_a_homophone_from_speech_finds_the_same_entry(heard: str) -> None:
    assert sounds(heard) == sounds("暖气不热找谁")
    assert sample_matcher().search(heard, 1)[0].entry_key == "heating-not-warm"


def test_scores_lie_between_0_and_1_and_come_best_first() -> None:
    found = sample_matcher().search("公积金怎么提取出来", 5)
    scores = [m.score for m in found]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 1 for s in scores)
    assert found[0].entry_key == "provident-fund-withdraw"


def test_an_empty_question_or_collection_matches_nothing() -> None:
    assert sample_matcher().search("嗯 那个 ……", 3) == []
    assert Matcher([]).search("暖气", 3) == []


def test_bm25_prefers_the_document_with_the_rarer_term() -> None:
    index = Bm25([["暖气", "不热"], ["暖气", "缴费"], ["停水"]])
    scores = index.scores(["暖气", "缴费"])
    assert scores[1] > scores[0] > scores[2] == 0
    assert scores[1] <= 1
