"""A suggested category for tickets that came without one (the IVR's, mostly).

A caller who pressed no category key still said what the problem is; the words that
split a category's month into topics also tell categories apart. A logistic regression
on the same TF-IDF features, trained on categories people set (staff, or the import
from the city's platform), suggests one with a probability. A sure suggestion is
written with `category_source = "model"`; an unsure one leaves the category empty with
its confidence, and staff decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from analysis.text import TextTokenizer, store_tokenizer
from analysis.topics import tfidf_vectorizer
from core.config import TopicsConfig
from db.models import Ticket

PEOPLES_SOURCES = ("staff", "import")  # categories a person set: the model learns from these
MODEL_SOURCE = "model"
# A strong fit is wanted (few, short texts per category); C = 10 keeps the probabilities
# from flattening towards 1 / categories, which would put every suggestion under 0.6.
REGULARISATION_C = 10.0


@dataclass
class CategoryModel:
    """A fitted vectorizer and classifier; `suggest` gives (category, confidence)."""

    vectorizer: TfidfVectorizer
    classifier: LogisticRegression

    @property
    def categories(self) -> list[str]:
        """The categories it can suggest."""
        return [str(c) for c in self.classifier.classes_]

    def suggest(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The likeliest category of each text and its probability."""
        if not texts:
            return []
        probabilities = self.classifier.predict_proba(self.vectorizer.transform(texts))
        best = probabilities.argmax(axis=1)
        classes = self.classifier.classes_
        return [
            (str(classes[i]), round(float(row[i]), 4))
            for i, row in zip(best, probabilities, strict=True)
        ]


TRAINING_LIMIT = 20_000  # tickets: enough for a dozen categories, seconds to fit


def train(
    texts: Sequence[str],
    categories: Sequence[str],
    settings: TopicsConfig,
    tokenizer: TextTokenizer,
) -> CategoryModel:
    """Fit on labelled texts; needs two categories or more (raises ValueError otherwise)."""
    if len(set(categories)) < 2:
        raise ValueError("a category model needs tickets of two categories or more")
    vectorizer = tfidf_vectorizer(settings, tokenizer)
    features = vectorizer.fit_transform(texts)
    classifier = LogisticRegression(
        C=REGULARISATION_C, class_weight="balanced", max_iter=2000, random_state=settings.seed
    )
    classifier.fit(features, list(categories))
    return CategoryModel(vectorizer, classifier)


def train_from_store(
    session: Session, settings: TopicsConfig, limit: int = TRAINING_LIMIT
) -> CategoryModel:
    """Fit on the newest `limit` tickets whose category a person set.

    Older rows have no category source: their category came from staff or the import
    too (the model did not exist), so they count. The newest ones only: categories and
    wording drift, and a city's whole history would make the monthly run slow for no
    better a model.
    """
    text = _text_column()
    rows = session.execute(
        select(text, Ticket.category)
        .where(
            Ticket.category.is_not(None),
            or_(Ticket.category_source.in_(PEOPLES_SOURCES), Ticket.category_source.is_(None)),
            text.is_not(None),
        )
        .order_by(Ticket.id.desc())
        .limit(limit)
    ).all()
    return train([t for t, _ in rows], [c for _, c in rows], settings, store_tokenizer(session))


def tickets_without_category(
    session: Session, start: datetime | None = None, end: datetime | None = None
) -> list[Ticket]:
    """Tickets with text but no category yet (accepted in [start, end) if given), oldest first."""
    query = select(Ticket).where(Ticket.category.is_(None), _text_column().is_not(None))
    if start is not None:
        query = query.where(Ticket.accepted_at >= start)
    if end is not None:
        query = query.where(Ticket.accepted_at < end)
    return list(session.scalars(query.order_by(Ticket.id)))


def apply_suggestions(
    session: Session,
    tickets_without_category: Sequence[Ticket],
    model: CategoryModel,
    settings: TopicsConfig,
) -> int:
    """Write the model's category where it is sure enough; return how many were set.

    Under `min_confidence` only the confidence is written and the category stays empty,
    so the ticket waits for staff. Changes go into the caller's session; the caller
    commits.
    """
    tickets = [t for t in tickets_without_category if t.category is None and _text_of(t)]
    written = 0
    for ticket, (category, confidence) in zip(
        tickets, model.suggest([_text_of(t) for t in tickets]), strict=True
    ):
        ticket.category_confidence = confidence
        if confidence >= settings.min_confidence:
            ticket.category = category
            ticket.category_source = MODEL_SOURCE
            written += 1
    session.flush()
    return written


def _text_of(ticket: Ticket) -> str:
    return (ticket.description or "").strip() or (ticket.transcript or "").strip()


def _text_column() -> ColumnElement[str | None]:
    """A ticket's text in SQL: the description, else the transcript."""
    return func.coalesce(func.nullif(Ticket.description, ""), Ticket.transcript)
