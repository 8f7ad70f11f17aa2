"""Which knowledge-base entry answers a question: BM25 over words and sounds, plus spelling.

A question comes typed by an agent or recognised from a caller's speech, so three
signals are blended, each scaled to 0–1:

- BM25 (k1 1.5, b 0.75) over jieba terms of each entry's title, phrasings and keywords;
- BM25 over the pinyin of the same text (syllable pairs, no tones), so a recogniser's
  homophone (暖汽, 暖器 for 暖气) still finds the entry;
- rapidfuzz character similarity of the raw question against each phrasing.

BM25 is scaled by what the question could score if every one of its terms were found
once in an entry of average length: a question full of words no entry knows (a specific
grievance) stays low even when one of its words is shared, which is what keeps
complaints from being answered with a leaflet.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jieba
from pypinyin import lazy_pinyin
from rapidfuzz import fuzz

K1 = 1.5
B = 0.75
WEIGHTS = (0.45, 0.25, 0.30)  # terms, pinyin, spelling: tuned on tests/data/kb_eval.yaml

# said before or around a question, never what it is about; longest first so
# 我想问一下 goes before 请问 and 问一下
FILLERS = sorted(
    {
        "我想问一下", "我想咨询一下", "想咨询一下", "我想咨询", "我想了解一下", "我想问问",
        "想问一下", "麻烦问一下", "请问一下", "问一下", "请问", "咨询一下", "你好", "您好",
        "喂", "嗯", "啊", "呃", "哦", "噢", "那个", "这个", "就是说", "就是", "然后",
        "麻烦你", "麻烦您", "麻烦", "谢谢", "一下", "的话", "吧", "呢", "呀", "哈",
    },
    key=len,
    reverse=True,
)  # fmt: skip
_STOPWORDS = (
    "的 了 吗 么 是 我 我们 你 你们 他 她 它 在 有 和 跟 与 或 要 想 能 可以 会 该 应该 "
    "怎么 怎么样 怎样 如何 什么 哪 哪里 哪儿 哪个 哪些 谁 吗 嘛 还 也 都 就 去 到 给 把 被 "
    "让 这 那 个 啥 多少 几 不 没 没有 咋 咋办 办 呢 家 里 上 下 一 些 得 着 过 对 从 "
    "现在 今天 一直 已经 请 帮 帮忙 告诉"
)
STOPWORDS = frozenset(_STOPWORDS.split())
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)
_HAN_OR_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+")


@dataclass(frozen=True)
class Match:
    """An entry proposed for a question, with its blended score (0–1)."""

    entry_key: str
    title: str
    score: float


@dataclass(frozen=True)
class Document:
    """What is matched of one entry: its key, its title and the texts that say it."""

    key: str
    title: str
    phrasings: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@functools.cache
def _tokenizer() -> jieba.Tokenizer:
    """A private jieba instance (the global one is shared with the topic analysis)."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def normalise(text: str) -> str:
    """The question without fillers, punctuation or spaces, lower-cased."""
    text = _PUNCTUATION.sub("", text.lower())
    for filler in FILLERS:
        text = text.replace(filler, "")
    return text


def terms(text: str, extra: Iterable[str] = ()) -> list[str]:
    """Search-mode jieba terms of normalised text without stop words (so 公积金 also
    gives 公积 and 积金), plus `extra` words kept whole (an entry's keywords)."""
    cut = _tokenizer().cut_for_search(normalise(text))
    words = [w for w in cut if w.strip() and w not in STOPWORDS]
    return words + [normalise(k) for k in extra if normalise(k)]


def sounds(text: str) -> list[str]:
    """Toneless pinyin syllable pairs of normalised text: 暖汽/暖器/暖气 all give nuan-qi."""
    syllables = lazy_pinyin(_HAN_OR_WORD.findall(normalise(text)))
    pairs = [f"{a}-{b}" for a, b in itertools.pairwise(syllables)]
    return pairs or syllables


class Bm25:
    """Okapi BM25 over a small fixed collection, with scores scaled to 0–1."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = K1, b: float = B) -> None:
        self.k1, self.b = k1, b
        self.counts = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.average = (sum(self.lengths) / len(documents)) if documents else 1.0
        frequency: Counter[str] = Counter()
        for counts in self.counts:
            frequency.update(counts.keys())
        total = len(documents)
        self.idf = {t: math.log(1 + (total - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
        self.unseen_idf = math.log(1 + (total + 0.5) / 0.5)  # a word no entry has

    def scores(self, query: Sequence[str]) -> list[float]:
        """Each document's BM25 over the question's distinct terms, divided by what the
        question scores when each term occurs once in a document of average length."""
        wanted = set(query)
        ceiling = sum(self.idf.get(t, self.unseen_idf) for t in wanted)
        if not ceiling:
            return [0.0] * len(self.counts)
        result = []
        for counts, length in zip(self.counts, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.average)
            raw = sum(
                self.idf[t] * counts[t] * (self.k1 + 1) / (counts[t] + norm)
                for t in wanted
                if t in counts
            )
            result.append(min(1.0, raw / ceiling))
        return result


def spelling(query: str, texts: Sequence[str]) -> float:
    """The best character similarity (0–1) of the normalised question to any of texts.

    partial_ratio finds a short question inside a long phrasing; it is weighed against
    the plain ratio so two shared characters in a short text do not look like a match.
    """
    if not query:
        return 0.0
    best = 0.0
    for text in texts:
        plain = fuzz.ratio(query, text)
        partial = fuzz.partial_ratio(query, text) if min(len(query), len(text)) >= 4 else plain
        best = max(best, (plain + partial) / 200)
    return best


class Matcher:
    """The entries as the matcher sees them, indexed once; `search` ranks them for a question."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.documents = list(documents)
        self._texts = [
            [normalise(t) for t in (d.title, *d.phrasings) if normalise(t)] for d in self.documents
        ]
        words = [terms(" ".join((d.title, *d.phrasings)), d.keywords) for d in self.documents]
        self._words = Bm25(words)
        self._sounds = Bm25(
            [
                [s for t in (d.title, *d.phrasings, *d.keywords) for s in sounds(t)]
                for d in self.documents
            ]
        )

    def search(self, query: str, k: int = 3) -> list[Match]:
        """The k best entries for query, best first, with scores in 0–1 (none under 0)."""
        cleaned = normalise(query)
        if not cleaned or not self.documents:
            return []
        by_words = self._words.scores(terms(query))
        by_sound = self._sounds.scores(sounds(query))
        w_terms, w_sound, w_spell = WEIGHTS
        ranked = []
        for index, document in enumerate(self.documents):
            score = (
                w_terms * by_words[index]
                + w_sound * by_sound[index]
                + w_spell * spelling(cleaned, self._texts[index])
            )
            ranked.append(Match(document.key, document.title, round(score, 4)))
        ranked.sort(key=lambda m: (-m.score, m.entry_key))
        return ranked[:k]


def offered(matches: Sequence[Match], threshold: float) -> list[Match]:
    """The matches good enough to offer (`kb.threshold`): a weaker one is never read out."""
    return [m for m in matches if m.score >= threshold]
