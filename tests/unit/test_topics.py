"""主要反映: topics found in a hand-written labelled sample match its sub-topics.

The sample (tests/data/labelled_requests.yaml) holds 324 requests, 27 per sub-topic, in
four categories; each category's requests are one "month" here. A topic is judged by
the sub-topics of the requests it holds (adjusted Rand index, purity).
"""

from __future__ import annotations

from collections import Counter

import pytest
from sklearn.metrics import adjusted_rand_score

from analysis.text import NUMBER, PLACE, TextTokenizer, make_tokenizer
from analysis.topics import cosine, find_topics, is_new, label_of, umass
from core.config import TopicsConfig
from tests.support.labelled_sample import labelled, sample, sample_tokenizer

SETTINGS = TopicsConfig()


def tokenizer() -> TextTokenizer:
    return sample_tokenizer()


def test_the_sample_is_big_enough_to_judge_by() -> None:
    sizes = {(c, s): len(p) for c, subs in sample().items() for s, p in subs.items()}
    assert len(sizes) == 12
    assert 4 <= len(sample()) <= 6
    assert min(sizes.values()) >= 25
    assert sum(sizes.values()) >= 300


@pytest.mark.parametrize("category", ["水电气暖", "劳动纠纷", "城乡建设", "消费维权"])
def test_topics_recover_the_sub_topics_of_a_category(category: str) -> None:
    texts, labels = labelled(category)
    topics = find_topics(list(range(len(texts))), texts, SETTINGS, tokenizer())

    assert SETTINGS.k_min <= len(topics) <= SETTINGS.k_max
    found = {i: n for n, topic in enumerate(topics) for i in topic.member_ids}
    assert len(found) >= 0.95 * len(texts)  # nearly every request has a main topic
    held = sorted(found)
    ari = adjusted_rand_score([labels[i] for i in held], [found[i] for i in held])
    majority = sum(
        Counter(labels[i] for i in topic.member_ids).most_common(1)[0][1] for topic in topics
    )
    assert ari >= 0.6, (category, ari)
    assert majority / len(texts) >= 0.8, (category, majority / len(texts))


def test_a_topic_is_labelled_by_its_terms_and_its_most_typical_tickets() -> None:
    texts, labels = labelled("水电气暖")
    ids = [1000 + i for i in range(len(texts))]
    topics = find_topics(ids, texts, SETTINGS, tokenizer())

    heating = next(t for t in topics if "暖气" in t.label)
    assert "暖气不热" in heating.label.split("、")  # the negation stays: not 暖气热
    assert len(heating.typical_ids) == 3
    assert set(heating.typical_ids) <= set(heating.member_ids)
    assert all(labels[i - 1000] == "暖气不热" for i in heating.typical_ids)
    weights = [w for _, w in heating.terms]
    assert weights == sorted(weights, reverse=True) and len(weights) <= 10
    assert all(PLACE not in term and NUMBER not in term for term, _ in heating.terms)
    assert [len(t.member_ids) for t in topics] == sorted(
        (len(t.member_ids) for t in topics), reverse=True
    )


def test_a_sub_topic_absent_from_the_last_three_months_is_marked_new() -> None:
    """劳动纠纷: wages and social insurance every month; dismissals appear this month."""
    old = ["拖欠工资", "社保未缴"]
    texts, _ = labelled("劳动纠纷", old)
    previous = []
    for month in range(3):  # each earlier month: two thirds of the old phrasings
        part = [t for i, t in enumerate(texts) if i % 3 != month]
        previous += [
            dict(t.terms) for t in find_topics(range(len(part)), part, SETTINGS, tokenizer())
        ]
    assert previous

    now, labels = labelled("劳动纠纷")
    topics = find_topics(list(range(len(now))), now, SETTINGS, tokenizer())
    marked = {}
    for topic in topics:
        main = Counter(labels[i] for i in topic.member_ids).most_common(1)[0][0]
        marked.setdefault(main, []).append(
            is_new(dict(topic.terms), previous, SETTINGS.new_topic_cosine)
        )
    assert all(marked["违法解雇"]), marked
    assert not any(marked["拖欠工资"] + marked["社保未缴"]), marked


def test_new_needs_a_history() -> None:
    terms = {"停水": 1.0}
    assert is_new(terms, None, 0.3) is False  # first run: nothing to compare with
    assert is_new(terms, [], 0.3) is True  # known months without topics
    assert is_new(terms, [{"停水": 0.5, "通知": 0.5}], 0.3) is False
    assert cosine({"a": 1.0}, {"b": 1.0}) == 0.0
    assert cosine({"a": 3.0, "b": 4.0}, {"a": 3.0, "b": 4.0}) == pytest.approx(1.0)


def test_too_few_requests_give_no_topic_rather_than_one_citizens_words() -> None:
    texts, _ = labelled("水电气暖", ["停水"])
    assert find_topics([1, 2, 3], texts[:3], SETTINGS, tokenizer()) == []
    one = find_topics(range(12), texts[:12], SETTINGS, tokenizer())
    # a single water cut topic: 停水 itself is in most of them, so max_df leaves it out
    assert len(one) == 1 and "水" in one[0].label


def test_umass_prefers_terms_that_keep_company() -> None:
    from scipy import sparse

    # documents x terms: terms 0 and 1 always together, term 2 alone
    present = sparse.csc_matrix([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert umass([0, 1], present) == pytest.approx(0.4054651, rel=1e-6)  # log(3 / 2)
    assert umass([0, 2], present) < umass([0, 1], present)


def test_labels_join_bigrams_and_skip_placeholders() -> None:
    assert (
        label_of(["<地名>", "暖气 不热", "暖气", "不热", "供热", "温度"]) == "暖气不热、供热、温度"
    )
    assert label_of(["工资", "拖欠 工资"]) == "拖欠工资"


def test_places_and_numbers_become_placeholders() -> None:
    words = make_tokenizer(["东胜区", "交通街道", "十二连城乡"], ["水电气暖"]).tokens(
        "那个就是东胜交通街道3号楼二单元502室暖气不热，十二连城乡也是，电话13812345678"
    )
    assert words.count(PLACE) == 3
    assert words.count(NUMBER) == 4
    assert "暖气" in words and "不热" in words
    assert "那个" not in words and "就是" not in words and "，" not in words
