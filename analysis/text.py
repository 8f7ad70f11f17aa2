"""Words of a citizen's request: jieba with the city's places, numbers and places as placeholders.

Topics and the category model count words, so two requests about the same cold radiator
must give the same words whatever the street or the flat number: a place name of the
tree becomes `<地名>` and any number (Arabic or Chinese numerals, phone and house
numbers) becomes `<数>`. Fillers the agents and the recogniser leave in ("那个", "就是")
and the hotline's own boilerplate ("反映", "处理") carry no topic and are dropped.

Each tokenizer owns a private `jieba.Tokenizer`, never the global one: the user dictionary
(categories and places) of one city or one test cannot leak into another caller's words.
Loading jieba's dictionary takes most of a second, so it is read once per process and
each vocabulary's tokenizer is built once from a copy of it and cached.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jieba
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Department, Ticket

PLACE = "<地名>"
NUMBER = "<数>"

# jieba announces every dictionary load on stderr; a report command should not
logging.getLogger("jieba").setLevel(logging.WARNING)
jieba.setLogLevel(logging.WARNING)

# Arabic numbers with their separators (13812345678, 3-2-501, 2025/10/03, 1.5), and runs of
# Chinese numerals: two or more, or one before a measure word ("三个月", "五号楼");
# a lone numeral inside a word ("一直", "十分", "万一") stays a word.
_CHINESE_DIGITS = "零〇一二三四五六七八九十百千万亿两"
_MEASURES = "个号楼栋幢单层室户元块角毛天日月年周次趟遍岁米平斤度倍家台辆期"
NUMBER_PATTERN = re.compile(
    rf"\d+(?:[.\-/:]\d+)*|[{_CHINESE_DIGITS}]{{2,}}|[{_CHINESE_DIGITS}](?=[{_MEASURES}])"
)
_NO_WORD = re.compile(r"[\W_]+")

# Administrative suffixes a caller often leaves out ("东胜" for 东胜区). 街道, 社区 and 村 are
# not stripped: "交通街道" without its suffix is the everyday word 交通.
_SHORTENED_SUFFIXES = ("苏木", "市", "区", "旗", "县", "镇", "乡")

# Units of the tree that are not places (市住房和城乡建设局, 供热公司): their names stay words
_UNIT_SUFFIXES = ("局", "委", "委员会", "办", "办公室", "中心", "公司", "集团", "队", "所", "站")

# Words of the hotline's trade jieba's general dictionary lacks or splits (网购 -> 网 / 购)
_HOTLINE_WORDS = (
    "网购 网店 社保 断缴 欠薪 讨薪 预付卡 储值卡 会员卡 办卡 退卡 违建 私搭乱建 加盖 井盖 窨井盖 "
    "路面 坑洼 扰民 夜间施工 停水 停气 供暖 暖气片 地暖 燃气表 话费 资费 携号转网 包月"
)
HOTLINE_WORDS = tuple(_HOTLINE_WORDS.split())

NEGATIONS = frozenset({"不", "没", "未"})

_STOPWORDS = """
    的 地 得 了 着 过 是 在 有 和 与 及 或 跟 同 就 都 也 还 又 再 才 很 太 更 最 挺 蛮
    我 我们 我家 咱 咱们 你 你们 您 他 她 它 他们 她们 它们 自己 大家 人家
    这 那 这个 那个 这些 那些 这里 那里 这边 那边 这儿 那儿 这样 那样 这么 那么 怎么 什么
    啊 呀 吧 吗 呢 嘛 哦 噢 哎 唉 嗯 呃 额 喂 哈 啦 哇 么 的话 然后 就是 就是说 反正 其实
    一下 一些 一点 一直 已经 现在 目前 当时 之前 以后 之后 还是 但是 可是 因为 所以 如果
    而且 并且 于是 然而 不过 只是 只 又是 也是 都是 不是 就是 还有 没 没有 有没有 能 能不能
    可以 可不可以 会 要 想 让 给 把 被 对 向 从 到 为 为了 关于 对于 比较 非常 特别 十分
    真的 实在 确实 一样 这种 那种 各种 好像 感觉 觉得 知道 说 问 看 去 来 做 弄 搞 帮 帮忙
    麻烦 请 请问 您好 你好 谢谢 喂喂 同志 师傅 领导 工作人员 热线 市民 来电
    反映 投诉 举报 咨询 问题 情况 事情 事儿 处理 解决 尽快 希望 要求 诉求 一下子 上 下 里
    个 些 种 次 下来 起来 出来 过来 进去 不 不能 不了 是不是 只有 根本 结果 时候 每个 有个 有人
    一处 人 以 由 但 连 等 打 用 干 家 多 号 天 月 年 块 元 毛 岁 回 遍 趟 一 好几
"""
STOPWORDS = frozenset(_STOPWORDS.split())


class TextTokenizer:
    """jieba with a city's user dictionary; `tokens` gives the words a topic counts."""

    def __init__(self, places: Iterable[str] = (), categories: Iterable[str] = ()) -> None:
        self._places = _place_names(places)
        self._jieba = jieba.Tokenizer()
        frequencies, total = _jieba_dictionary()
        # a private copy: the words added below must not reach another tokenizer
        self._jieba.FREQ, self._jieba.total = dict(frequencies), total
        self._jieba.initialized = True
        # a high frequency keeps a place or a category one word even where jieba's own
        # dictionary would split it ("十二连城乡" would otherwise be 十二 / 连 / 城乡)
        own_words = {c.strip() for c in categories if c.strip()} | set(HOTLINE_WORDS)
        for word in sorted(self._places | own_words):
            self._jieba.add_word(word, freq=100_000)
        places_first = "|".join(re.escape(p) for p in sorted(self._places, key=len, reverse=True))
        self._placeholders = re.compile(
            (f"(?P<place>{places_first})|" if places_first else "")
            + f"(?P<number>{NUMBER_PATTERN.pattern})"
        )

    def tokens(self, text: str | None) -> list[str]:
        """The words of one request, placeholders in, stopwords and punctuation out."""
        return self.cut(text).words

    def search_tokens(self, text: str | None) -> list[str]:
        """`tokens` plus the dictionary words inside long words (拖欠工资: 拖欠, 工资).

        Callers say 拖欠工资 one day and 工资拖欠 the next; the shorter words let the two
        requests share terms. Each sub-word comes just before the word that holds it.
        """
        return self.cut(text).search_words

    __call__ = tokens

    def cut(self, text: str | None) -> Cut:
        """Both word lists of one request from a single jieba pass.

        jieba's `cut_for_search` is its precise `cut` with each long word preceded by
        its 2- and 3-character sub-words that are in the dictionary; deriving those from
        the one precise cut gives the same words at half the cost (jieba was most of a
        month's topic time).
        """
        text = text or ""
        words, search_words = _Kept(self._places), _Kept(self._places, search=True)
        position = 0
        # places first: "十二连城乡" is a township, not the number twelve
        for found in self._placeholders.finditer(text):
            self._cut_fragment(text[position : found.start()], words, search_words)
            mark = PLACE if found.lastgroup == "place" else NUMBER
            words.mark(mark)
            search_words.mark(mark)
            position = found.end()
        self._cut_fragment(text[position:], words, search_words)
        return Cut(words.words, search_words.words)

    def _cut_fragment(self, fragment: str, words: _Kept, search_words: _Kept) -> None:
        # no HMM guessing of unknown words: it glues noise into one-off words (老板不, 就让)
        for raw in self._jieba.cut(fragment, HMM=False):
            for sub_word in self._sub_words(raw):
                search_words.take(sub_word)
            search_words.take(raw)
            words.take(raw)
        # a negation does not reach across a place or a number
        words.negation = search_words.negation = ""

    def _sub_words(self, word: str) -> list[str]:
        """The dictionary's 2- then 3-character words inside a longer word, as
        `jieba.Tokenizer.cut_for_search` yields them (0.42: 2-grams of words over 2
        characters, then 3-grams of words over 3)."""
        if len(word) <= 2:
            return []
        known = self._jieba.FREQ
        found = [word[i : i + 2] for i in range(len(word) - 1) if known.get(word[i : i + 2])]
        if len(word) > 3:
            found += [word[i : i + 3] for i in range(len(word) - 2) if known.get(word[i : i + 3])]
        return found


@dataclass(frozen=True)
class Cut:
    """A request's words (precise cut) and its search words (with the words inside long ones)."""

    words: list[str]
    search_words: list[str]


class _Kept:
    """The words of one cut that a topic counts, built word by word.

    A negation (不, 没, 未) is held and put on the next word: 暖气不热 is not 暖气热.
    In search words the next word is also kept bare, like a sub-word (不交 also counts
    as 交). Punctuation ends a pending negation; a stopword lets it pass.
    """

    def __init__(self, places: frozenset[str], *, search: bool = False) -> None:
        self.words: list[str] = []
        self.negation = ""
        self._places = places
        self._search = search

    def mark(self, placeholder: str) -> None:
        self.words.append(placeholder)

    def take(self, raw: str) -> None:
        word = raw.strip().lower()
        if word in NEGATIONS:
            self.negation = word
            return
        if not word or _NO_WORD.fullmatch(word):
            self.negation = ""
            return
        if word in STOPWORDS:
            return
        if word in self._places:
            self.words.append(PLACE)
        elif self.negation and self._search:
            self.words.extend((word, self.negation + word))
        else:
            self.words.append(self.negation + word)
        self.negation = ""


def _place_names(names: Iterable[str]) -> frozenset[str]:
    """The tree's names and their everyday short forms (东胜区 -> 东胜)."""
    places = set()
    for name in (n.strip() for n in names):
        if len(name) < 2:
            continue
        places.add(name)
        for suffix in _SHORTENED_SUFFIXES:
            stem = name.removesuffix(suffix)
            if stem != name and len(stem) >= 2:
                places.add(stem)
                break
    return frozenset(places)


@lru_cache(maxsize=1)
def _jieba_dictionary() -> tuple[dict[str, int], int]:
    """jieba's own dictionary (word -> frequency, and their total), read once per process.

    Reading it takes most of a second even from jieba's cache file; copying the dict
    for a new vocabulary takes a few hundredths.
    """
    reader = jieba.Tokenizer()
    reader.initialize()
    return reader.FREQ, reader.total


def load_dictionary() -> None:
    """Read jieba's dictionary now, so the first tokenizer built later does not wait for it.

    The month's topics run in a worker process that calls this as soon as it starts,
    while its parent is still reading the store.
    """
    _jieba_dictionary()


@lru_cache(maxsize=4)
def _cached(places: frozenset[str], categories: frozenset[str]) -> TextTokenizer:
    return TextTokenizer(places, categories)


def make_tokenizer(places: Iterable[str] = (), categories: Iterable[str] = ()) -> TextTokenizer:
    """The tokenizer for this vocabulary, built once and then reused."""
    return _cached(frozenset(places), frozenset(categories))


def tokens(text: str | None) -> list[str]:
    """Words of a text with no city dictionary (numbers still become `<数>`)."""
    return make_tokenizer().tokens(text)


@dataclass(frozen=True)
class Vocabulary:
    """A store's own words for jieba, as plain values (a worker process can be sent them)."""

    places: tuple[str, ...]
    categories: tuple[str, ...]

    def tokenizer(self) -> TextTokenizer:
        return make_tokenizer(self.places, self.categories)


def store_vocabulary(session: Session) -> Vocabulary:
    """The tree's place names (units that are not places left out) and the categories in use."""
    names = session.scalars(select(Department.name).distinct()).all()
    places = [name for name in names if not name.endswith(_UNIT_SUFFIXES)]
    categories = session.scalars(
        select(Ticket.category).where(Ticket.category.is_not(None)).distinct()
    ).all()
    return Vocabulary(tuple(places), tuple(c for c in categories if c))


def store_tokenizer(session: Session) -> TextTokenizer:
    """The tokenizer for this store: the tree's place names and the categories in use."""
    return store_vocabulary(session).tokenizer()
