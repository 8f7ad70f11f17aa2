"""Choosing k: short NMF fits rank the k as full fits do; one allowed k is not fitted twice."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import topics
from analysis.topics import FIT_ITERATIONS, choose_k, tfidf_vectorizer, umass
from core.config import TopicsConfig
from tests.support.labelled_sample import labelled, sample, sample_tokenizer

SETTINGS = TopicsConfig()


def full_fit_choice(weights, settings: TopicsConfig) -> int:  # type: ignore[no-untyped-def]
    """The k as chosen before: every k fitted in full, the most coherent kept."""
    present = (weights > 0).astype(np.int32).tocsc()
    scores = {}
    for k in topics._k_range(settings, *weights.shape):
        term_topic = topics._nmf(k, settings, FIT_ITERATIONS).fit(weights).components_
        scores[k] = np.mean([umass(topics._top(r, positive=False), present) for r in term_topic])
    return max(scores, key=lambda k: (scores[k], -k))


@pytest.mark.parametrize("category", sorted(sample()))
def test_short_fits_choose_the_k_full_fits_choose(category: str) -> None:
    texts, _ = labelled(category)
    weights = tfidf_vectorizer(SETTINGS, sample_tokenizer()).fit_transform(texts)
    assert choose_k(weights, SETTINGS) == full_fit_choice(weights, SETTINGS)


def test_a_category_allowed_one_k_is_not_fitted_to_choose_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts, _ = labelled("水电气暖")
    weights = tfidf_vectorizer(SETTINGS, sample_tokenizer()).fit_transform(texts[:45])

    def no_fit(*args: object) -> None:
        raise AssertionError("a single allowed k needs no fit to be chosen")

    monkeypatch.setattr(topics, "_nmf", no_fit)
    assert choose_k(weights, SETTINGS) == 2  # 45 requests: about one topic per 20
