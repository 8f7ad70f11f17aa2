"""主要反映: the topics of each category's requests in a month, and which of them are new.

A monthly report says "劳动纠纷 N件 … 主要反映拖欠工资、社保未缴等问题". The words of
each request (`analysis.text`: places and numbers as placeholders) are weighted by TF-IDF
over words and bigrams, and NMF splits each category's month into k topics. k is chosen
in k_min..k_max by UMass coherence (do a topic's top terms occur in the same requests?),
so a quiet category gets two topics and a busy one more, without anyone setting k by
hand. A topic is labelled by its top terms and its three most typical tickets, and is
new when its terms resemble none of the last three months' topics.

Reading the store is the only side effect: the run writer stores the rows. The reading
(`month_texts`) and the finding (`topics_of`) are apart, so the finding can run in a
worker process beside the rest of the month's analysis.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from scipy import sparse
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analysis.text import NUMBER, PLACE, TextTokenizer, Vocabulary, store_vocabulary
from core.config import TopicsConfig
from core.periods import calendar_month
from db.models import Ticket

# A topic of the monthly report stands for at least about this many requests: a month's
# category with 50 requests has two topics at most, fewer requests are read one by one.
MIN_TOPIC_REQUESTS = 20
TOP_TERMS = 10  # the terms a topic is labelled, compared and scored by
TYPICAL_TICKETS = 3
LABEL_TERMS = 3
FIT_ITERATIONS = 500  # the chosen k's fit
# choosing k: on the demo city's month (11 categories, 450-1,350 requests each) fits of
# 50 iterations rank the k as fits of 500 do (30 already changed one category's k)
CHOOSE_ITERATIONS = 50
PLACEHOLDERS = frozenset({PLACE, NUMBER})


@dataclass(frozen=True)
class FoundTopic:
    """One topic of a set of requests: its terms, label and the tickets it holds."""

    label: str
    terms: tuple[tuple[str, float], ...]  # top terms, heaviest first
    member_ids: tuple[int, ...]  # tickets whose main topic this is
    typical_ids: tuple[int, ...]  # the three with the highest weight on it


@dataclass(frozen=True)
class TopicRow:
    """A `db.models.Topic` row before the run writer gives it its id and run."""

    month: str
    category: str
    label: str
    terms: tuple[tuple[str, float], ...]
    size: int
    typical_ticket_ids: tuple[int, ...]
    is_new: bool


def terms_of(tokenizer: TextTokenizer, text: str) -> list[str]:
    """A request's terms: its words (with the words inside long ones) and its word bigrams.

    Places and numbers are left out here: "<地名>" says nothing about what the request
    is about, and dropping it before pairing keeps "<地名> <数>" from becoming a term.
    """
    cut = tokenizer.cut(text)
    words = [w for w in cut.search_words if w not in PLACEHOLDERS]
    precise = [w for w in cut.words if w not in PLACEHOLDERS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(precise)]


def tfidf_vectorizer(settings: TopicsConfig, tokenizer: TextTokenizer) -> TfidfVectorizer:
    """TF-IDF over words and bigrams, damped (sublinear tf), rare and ubiquitous terms out."""
    return TfidfVectorizer(
        analyzer=functools.partial(terms_of, tokenizer),
        min_df=settings.min_df,
        max_df=settings.max_df,
        sublinear_tf=True,
    )


def find_topics(
    ids: Sequence[int], texts: Sequence[str], settings: TopicsConfig, tokenizer: TextTokenizer
) -> list[FoundTopic]:
    """The topics of these requests (one category's month), biggest first.

    Too few requests, or no term shared by min_df of them, give no topics: a label
    would then be one citizen's words, not what citizens mainly raise.
    """
    if len(texts) * settings.max_df < settings.min_df:
        return []
    vectorizer = tfidf_vectorizer(settings, tokenizer)
    try:
        weights = vectorizer.fit_transform(texts)
    except ValueError:  # no term left after min_df / max_df
        return []
    vocabulary = vectorizer.get_feature_names_out()
    k = choose_k(weights, settings)
    if k is None:
        return []
    model = _nmf(k, settings, FIT_ITERATIONS)
    document_topic = model.fit_transform(weights)
    return _describe(ids, document_topic, model.components_, vocabulary)


def choose_k(weights: sparse.csr_matrix, settings: TopicsConfig) -> int | None:
    """The k of the most coherent topics (UMass), from short fits; None if no k fits.

    A fit of CHOOSE_ITERATIONS gives each k's top terms nearly as its full fit does, so
    the ranking of the k is the same at a fraction of the cost; only the chosen k is
    fitted in full. Ties keep the smaller k.
    """
    candidates = _k_range(settings, *weights.shape)
    if len(candidates) <= 1:  # nothing to choose between (a quiet category: one k allowed)
        return candidates[0] if candidates else None
    present = (weights > 0).astype(np.int32).tocsc()
    best: tuple[float, int] | None = None
    for k in candidates:
        with warnings.catch_warnings():  # a short fit is meant not to converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            term_topic = _nmf(k, settings, CHOOSE_ITERATIONS).fit(weights).components_
        coherence = float(
            np.mean([umass(_top(row, positive=False), present) for row in term_topic])
        )
        if best is None or coherence > best[0]:
            best = (coherence, k)
    return None if best is None else best[1]


def _nmf(k: int, settings: TopicsConfig, iterations: int) -> NMF:
    return NMF(n_components=k, init="nndsvda", random_state=settings.seed, max_iter=iterations)


def _k_range(settings: TopicsConfig, documents: int, terms: int) -> range:
    """k_min..k_max, clamped to what the requests allow (see MIN_TOPIC_REQUESTS) and NMF's
    nndsvd start allows (k <= documents, terms)."""
    by_size = max(1, documents // MIN_TOPIC_REQUESTS)
    highest = min(settings.k_max, by_size, documents - 1, terms)
    lowest = max(1, min(settings.k_min, highest))
    return range(lowest, highest + 1)


def _top(row: np.ndarray, count: int = TOP_TERMS, *, positive: bool = True) -> list[int]:
    """Indices of a topic's heaviest terms, heaviest first (only weights > 0 if positive).

    Coherence always takes the full count: a sparse topic with three non-zero terms
    would otherwise be scored on three pairs against another's forty-five. Weights
    equal to 9 decimals are ties, kept in vocabulary order: terms that always occur
    together weigh the same but for the last bits of the sums, which differ with
    the number of BLAS threads, and a report must not change with the machine.
    """
    order = np.argsort(-np.round(row, 9), kind="stable")[:count]
    return [int(i) for i in order if row[i] > 0 or not positive]


def umass(top_terms: Sequence[int], present: sparse.csc_matrix) -> float:
    """UMass coherence of a topic: sum over ranked pairs of log((D(wi, wj) + 1) / D(wj)).

    D counts the documents holding a term (both terms for the pair); wj ranks above wi.
    Terms that keep company in the same requests score near 0, strangers far below.
    """
    terms = list(top_terms)
    if len(terms) < 2:
        return 0.0
    held = present[:, terms]
    together = (held.T @ held).toarray()  # documents holding both, for every pair at once
    counts = np.diag(together)
    score = 0.0
    for i in range(1, len(terms)):
        for j in range(i):
            score += math.log((int(together[i, j]) + 1) / max(int(counts[j]), 1))
    return score


def _describe(
    ids: Sequence[int],
    document_topic: np.ndarray,
    term_topic: np.ndarray,
    vocabulary: np.ndarray,
) -> list[FoundTopic]:
    """Label each topic; a request belongs to its heaviest topic (none if all weights are 0)."""
    main = document_topic.argmax(axis=1)
    has_topic = document_topic.max(axis=1) > 0
    found = []
    for topic, row in enumerate(term_topic):
        members = np.flatnonzero((main == topic) & has_topic)
        if members.size == 0:
            continue
        by_weight = members[np.argsort(-document_topic[members, topic], kind="stable")]
        terms = tuple((str(vocabulary[t]), round(float(row[t]), 4)) for t in _top(row))
        found.append(
            FoundTopic(
                label=label_of(term for term, _ in terms),
                terms=terms,
                member_ids=tuple(int(ids[m]) for m in members),
                typical_ids=tuple(int(ids[m]) for m in by_weight[:TYPICAL_TICKETS]),
            )
        )
    return sorted(found, key=lambda topic: -len(topic.member_ids))


def label_of(terms: object) -> str:
    """ "暖气不热、供热公司、温度": the first top terms a reader can use, bigrams joined.

    Placeholders are left out, and a word already inside a chosen bigram is not
    repeated (暖气, 不热 after 暖气不热); a bigram takes the place of its own word.
    """
    chosen: list[str] = []
    for term in terms:  # type: ignore[attr-defined]
        parts = str(term).split(" ")
        if any(part in PLACEHOLDERS for part in parts):
            continue
        shown = "".join(parts)
        if any(shown in already for already in chosen):
            continue
        chosen = [already for already in chosen if already not in shown] + [shown]
        if len(chosen) == LABEL_TERMS:
            break
    return "、".join(chosen)


def cosine(left: Mapping[str, float], right: Mapping[str, float]) -> float:
    """Cosine of two term -> weight vectors (0 if either is empty)."""
    dot = sum(weight * right.get(term, 0.0) for term, weight in left.items())
    norms = math.sqrt(sum(w * w for w in left.values())) * math.sqrt(
        sum(w * w for w in right.values())
    )
    return dot / norms if norms else 0.0


def is_new(
    terms: Mapping[str, float], previous: Sequence[Mapping[str, float]] | None, threshold: float
) -> bool:
    """New: below `threshold` cosine to every topic of the previous months.

    None means no history is known (a first run): nothing can be called new then.
    An empty list is a known history without topics, so every topic is new.
    """
    if previous is None:
        return False
    return all(cosine(terms, earlier) < threshold for earlier in previous)


@dataclass(frozen=True)
class MonthTexts:
    """What a month's topics are found from, read from the store as plain values.

    Plain so that a worker process can be sent it: `topics_of` then needs no session.
    `by_category`: category -> (ticket ids, texts), in ticket order.
    """

    month: str
    vocabulary: Vocabulary
    by_category: dict[str, tuple[list[int], list[str]]]


def month_texts(session: Session, month: str, tz: ZoneInfo) -> MonthTexts:
    """The month's categorised texts and the store's vocabulary (see `month_topics`)."""
    return MonthTexts(month, store_vocabulary(session), _month_texts(session, month, tz))


def topics_of(
    texts: MonthTexts, settings: TopicsConfig, previous: list[dict[str, float]] | None
) -> list[TopicRow]:
    """The topics of each category's texts, categories in name order (no store needed)."""
    tokenizer = texts.vocabulary.tokenizer()
    rows = []
    for category, (ids, bodies) in sorted(texts.by_category.items()):
        for topic in find_topics(ids, bodies, settings, tokenizer):
            rows.append(
                TopicRow(
                    month=texts.month,
                    category=category,
                    label=topic.label,
                    terms=topic.terms,
                    size=len(topic.member_ids),
                    typical_ticket_ids=topic.typical_ids,
                    is_new=is_new(dict(topic.terms), previous, settings.new_topic_cosine),
                )
            )
    return rows


def month_topics(
    session: Session,
    month: str,
    settings: TopicsConfig,
    tz: ZoneInfo,
    previous: list[dict[str, float]] | None,
) -> list[TopicRow]:
    """The month's topics per category, from tickets accepted in it (local time).

    A ticket's text is its description, else its transcript; merged duplicates are left
    out so one problem reported twice does not weigh twice. `previous`: the topics of
    the last three months as term -> weight, to mark the new ones.
    """
    return topics_of(month_texts(session, month, tz), settings, previous)


def _month_texts(
    session: Session, month: str, tz: ZoneInfo
) -> dict[str, tuple[list[int], list[str]]]:
    """Category -> (ticket ids, texts) of the month's categorised tickets that have text."""
    start, end = calendar_month(month).utc_range(tz.key)
    text = func.coalesce(func.nullif(Ticket.description, ""), Ticket.transcript)
    query = (
        select(Ticket.category, Ticket.id, text)
        .where(
            Ticket.accepted_at >= start,
            Ticket.accepted_at < end,
            Ticket.category.is_not(None),
            Ticket.merged_into_id.is_(None),
            text.is_not(None),
        )
        .order_by(Ticket.id)
    )
    grouped: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    for category, ticket_id, body in session.execute(query):
        if body and body.strip():
            grouped[category][0].append(ticket_id)
            grouped[category][1].append(body)
    return dict(grouped)  # a defaultdict of a lambda cannot be sent to a worker
