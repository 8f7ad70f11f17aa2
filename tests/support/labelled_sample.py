"""The hand-written labelled sample of citizens' requests (tests/data/labelled_requests.yaml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from analysis.text import TextTokenizer, make_tokenizer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "labelled_requests.yaml"
# the demo city's places the sample mentions, as the tree would hold them
_PLACES = """
    东胜区 康巴什区 达拉特旗 准格尔旗 伊金霍洛旗 交通街道 林荫街道 滨河街道 青春山街道
    树林召镇 薛家湾镇 沙圪堵镇 阿勒腾席热镇 乌兰木伦镇 工业街道 平原街道 富兴街道 康新街道
    天骄街道 建设街道 纺织街道 幸福街道 诃额伦街道 康和街道 白泥井镇 蓝天街道 天骄路街道
    公园街道 哈巴格希街道 大路镇
"""
PLACES = tuple(_PLACES.split())


@cache
def sample() -> dict[str, dict[str, list[str]]]:
    """category -> sub-topic -> phrasings."""
    return yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))


def sample_tokenizer() -> TextTokenizer:
    """The tokenizer a store with the sample's places and categories would build."""
    return make_tokenizer(PLACES, sample())


def labelled(category: str, subtopics: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(texts, sub-topic of each) of one category, optionally only some sub-topics."""
    texts: list[str] = []
    labels: list[str] = []
    for subtopic, phrasings in sample()[category].items():
        if subtopics is None or subtopic in subtopics:
            texts += phrasings
            labels += [subtopic] * len(phrasings)
    return texts, labels


def by_category() -> tuple[list[str], list[str]]:
    """(texts, category of each) over the whole sample."""
    texts: list[str] = []
    categories: list[str] = []
    for category, subtopics in sample().items():
        for phrasings in subtopics.values():
            texts += phrasings
            categories += [category] * len(phrasings)
    return texts, categories
