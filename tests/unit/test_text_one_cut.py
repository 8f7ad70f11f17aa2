"""One jieba pass gives the words the two passes gave (precise `cut`, `cut_for_search`).

`TextTokenizer.cut` derives the search words from the precise cut the way jieba's
`cut_for_search` does. The reference here is the tokenizer as it was before, cutting
each text twice; on the whole labelled sample (and a few edge cases) both word lists
and the topics' terms must be the same, word for word and in order.
"""

from __future__ import annotations

import itertools

import pytest

from analysis.text import _NO_WORD, NEGATIONS, NUMBER, PLACE, STOPWORDS, TextTokenizer
from analysis.topics import PLACEHOLDERS, terms_of
from tests.support.labelled_sample import by_category, sample_tokenizer

EDGE_CASES = [
    "",
    "不",
    "暖气不，热",  # a negation cut off by punctuation
    "没东胜区暖气",  # a negation before a place does not reach past it
    "不拖欠工资的中华人民共和国劳动合同法",  # long words with 2- and 3-character sub-words
    "那个就是东胜交通街道3号楼二单元502室暖气不热，十二连城乡也是，电话13812345678",
    "ABC网购Refund不退款！！",
]


def two_cuts(tokenizer: TextTokenizer, text: str, *, search: bool) -> list[str]:
    """The words as the tokenizer gave them with one jieba pass per word list."""
    text = text or ""
    words: list[str] = []
    position = 0
    for found in tokenizer._placeholders.finditer(text):
        words.extend(_words(tokenizer, text[position : found.start()], search))
        words.append(PLACE if found.lastgroup == "place" else NUMBER)
        position = found.end()
    words.extend(_words(tokenizer, text[position:], search))
    return words


def _words(tokenizer: TextTokenizer, fragment: str, search: bool) -> list[str]:
    words = []
    jieba = tokenizer._jieba
    cut = jieba.cut_for_search if search else jieba.cut
    negation = ""
    for raw in cut(fragment, HMM=False):
        word = raw.strip().lower()
        if word in NEGATIONS:
            negation = word
            continue
        if not word or _NO_WORD.fullmatch(word) or word in STOPWORDS:
            negation = "" if not word or _NO_WORD.fullmatch(word) else negation
            continue
        if word in tokenizer._places:
            words.append(PLACE)
        elif negation and search:
            words.extend((word, negation + word))
        else:
            words.append(negation + word)
        negation = ""
    return words


def two_cut_terms(tokenizer: TextTokenizer, text: str) -> list[str]:
    words = [w for w in two_cuts(tokenizer, text, search=True) if w not in PLACEHOLDERS]
    precise = [w for w in two_cuts(tokenizer, text, search=False) if w not in PLACEHOLDERS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(precise)]


def test_one_cut_gives_the_words_of_both_cuts_on_the_whole_sample() -> None:
    tokenizer = sample_tokenizer()
    texts, _ = by_category()
    assert len(texts) >= 300
    sub_words = 0
    for text in texts + EDGE_CASES:
        cut = tokenizer.cut(text)
        assert cut.words == two_cuts(tokenizer, text, search=False), text
        assert cut.search_words == two_cuts(tokenizer, text, search=True), text
        assert terms_of(tokenizer, text) == two_cut_terms(tokenizer, text), text
        sub_words += len(cut.search_words) - len(cut.words)
    assert sub_words > 100  # the sample does exercise the sub-words


@pytest.mark.parametrize(
    ("text", "inside"),
    [("拖欠工资", {"拖欠", "工资"}), ("中华人民共和国", {"中华", "人民", "共和国"})],
)
def test_search_words_hold_the_dictionary_words_inside_a_long_word(
    text: str, inside: set[str]
) -> None:
    cut = sample_tokenizer().cut(text)
    assert inside <= set(cut.search_words)
    assert set(cut.words) <= set(cut.search_words)
