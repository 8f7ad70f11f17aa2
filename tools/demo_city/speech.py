"""What a citizen's request looks like after an agent's quick typing or speech recognition.

Real descriptions are not the clean sentences of a template: recognisers write
homophones (暖器 for 暖气, 公资 for 工资), drop characters and keep the fillers
people say (嗯, 那个, 就是). The demo adds these so the topic and knowledge-base
matching see text like the hotline's. Only the template's own words are
changed: the place name and the number are filled in afterwards, intact, so
the area the text names stays findable.
"""

from __future__ import annotations

import random
import re

from tools.demo_city.data import SubTopic

# what recognisers commonly write instead (same or near-same pinyin)
HOMOPHONES = {
    "暖气": "暖器",
    "工资": "公资",
    "反映": "反应",
    "已经": "以经",
    "小区": "小曲",
    "物业": "务业",
    "维修": "维休",
    "拖欠": "脱欠",
    "投诉": "头诉",
    "老板": "老版",
    "退费": "推费",
    "路灯": "路等",
    "停水": "听水",
    "补贴": "补帖",
    "油烟": "游烟",
    "学校": "学效",
    "合同": "和同",
    "一直": "一只",
    "处理": "出理",
    "没有": "没由",
}
_HOMOPHONE = re.compile("|".join(HOMOPHONES))
FILLERS = ("嗯，", "那个，", "就是，", "呃，", "喂，你好，", "我想问一下，", "是这样的，")
PLACEHOLDER = re.compile(r"(\{place\}|\{n\})")
NOISY = 0.45  # share of requests with some noise at all


def say(rng: random.Random, topic: SubTopic, place: str, n: int) -> str:
    """One phrasing of the sub-topic, maybe noisy, with the place and number filled in."""
    template = rng.choice(topic.phrasings)
    if rng.random() < NOISY:
        template = _noisy(rng, template)
    return template.replace("{place}", place).replace("{n}", str(n))


def _noisy(rng: random.Random, template: str) -> str:
    parts = PLACEHOLDER.split(template)
    x = rng.random()
    for index in range(0, len(parts), 2):  # the literal parts, never the placeholders
        if x < 0.5:
            parts[index] = _HOMOPHONE.sub(lambda m: HOMOPHONES[m.group()], parts[index], count=1)
        elif x < 0.75 and len(parts[index]) > 4:
            cut = rng.randrange(len(parts[index]) - 1)
            parts[index] = parts[index][:cut] + parts[index][cut + 1 :]
    text = "".join(parts)
    if x >= 0.35:  # fillers, alone or with one of the above
        text = rng.choice(FILLERS) + text
    return text
