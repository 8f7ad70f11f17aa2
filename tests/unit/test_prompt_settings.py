"""A prompt names the key the city set: 常见问题 follows `kb.offer_key` (prompts/build.py)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.config import load_config
from prompts.build import CATALOG, SETTINGS_IN_TEXT, build_all, load_catalog, spoken
from tests.support.config import write_config


def test_the_queue_offer_says_the_configured_key(tmp_path: Path) -> None:
    text = load_catalog(CATALOG)["kb_queue_offer"]
    five = load_config(write_config(tmp_path / "five", kb={"offer_key": "5"}))
    star = load_config(write_config(tmp_path / "star", kb={"offer_key": "*"}))
    assert spoken(text["zh"], five, "zh") == "常见问题请按5。"
    assert spoken(text["en"], five, "en").endswith("press 5.")
    assert spoken(text["zh"], star, "zh") == "常见问题请按星号键。"
    assert "star" in spoken(text["en"], star, "en")


def test_every_setting_a_prompt_names_is_one_the_build_fills_in() -> None:
    named = {
        found
        for texts in load_catalog(CATALOG).values()
        for text in texts.values()
        for found in re.findall(r"\{[^}]*\}", text)
    }
    assert named and named <= set(SETTINGS_IN_TEXT)


def test_a_changed_key_renders_the_prompt_again(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    texts = load_catalog(CATALOG)["kb_queue_offer"]
    catalog.write_text(
        yaml.safe_dump({"kb_queue_offer": texts, "goodbye": {"zh": "再见。", "en": "Goodbye."}})
    )
    site = write_config(tmp_path / "site", kb={"offer_key": "3"})
    override = tmp_path / "override"
    first = build_all(load_config(site), catalog_path=catalog, override_dir=override)
    assert first.rendered == 4
    moved = write_config(tmp_path / "site", kb={"offer_key": "6"})
    again = build_all(load_config(moved), catalog_path=catalog, override_dir=override)
    assert (again.rendered, again.unchanged) == (2, 2)  # the offer in zh and en, not goodbye
