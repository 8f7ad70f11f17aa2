"""A category for tickets without one: held-out macro-F1 on the labelled sample, and staff
decide what the model is unsure of."""

from __future__ import annotations

from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from analysis.category_model import train
from core.config import TopicsConfig
from tests.support.labelled_sample import by_category, sample_tokenizer

SETTINGS = TopicsConfig()


def held_out() -> tuple[list[str], list[str], list[str], list[str]]:
    texts, categories = by_category()
    return train_test_split(  # type: ignore[return-value]
        texts, categories, test_size=0.3, stratify=categories, random_state=SETTINGS.seed
    )


def test_suggested_categories_reach_macro_f1_085_on_held_out_requests() -> None:
    train_texts, test_texts, train_categories, test_categories = held_out()
    model = train(train_texts, train_categories, SETTINGS, sample_tokenizer())

    suggestions = model.suggest(test_texts)
    predicted = [category for category, _ in suggestions]
    assert f1_score(test_categories, predicted, average="macro") >= 0.85
    assert sorted(model.categories) == sorted(set(train_categories))
    # most suggestions are sure enough to be written without staff
    sure = [c for c, confidence in suggestions if confidence >= SETTINGS.min_confidence]
    assert len(sure) >= 0.7 * len(test_texts)


def test_a_request_about_none_of_the_categories_is_left_to_staff() -> None:
    train_texts, _, train_categories, _ = held_out()
    model = train(train_texts, train_categories, SETTINGS, sample_tokenizer())

    for text in ("我想问一下明天天气怎么样", "你好 喂 听得见吗", "孩子上学的户口迁移怎么办理"):
        [(_, confidence)] = model.suggest([text])
        assert confidence < SETTINGS.min_confidence, text


def test_no_texts_no_suggestions() -> None:
    train_texts, _, train_categories, _ = held_out()
    model = train(train_texts, train_categories, SETTINGS, sample_tokenizer())
    assert model.suggest([]) == []
