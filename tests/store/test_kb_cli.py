"""`hotline kb import | list | test` on a config and store of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.migrate import upgrade
from hotline.cli import support as cli_support
from hotline.cli.main import app
from tests.support.config import write_config

SAMPLE = Path(__file__).resolve().parents[2] / "kb" / "sample_entries.yaml"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return write_config(
        tmp_path / "cfg", database={"url": url}, paths={"state_dir": str(tmp_path / "var")}
    )


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["kb", *args], catch_exceptions=False, env={"COLUMNS": "200"})


def test_import_twice_then_list_and_test(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # xdist's workers say COLUMNS=80: the table folds its cells, but the test reads whole
    # keys and titles on one line, as a wide terminal shows them
    monkeypatch.setattr(cli_support.console, "width", 200)
    first = run("import", str(SAMPLE), "-c", str(config_file))
    assert first.exit_code == 0, first.output
    assert "40 added" in first.output
    again = run("import", str(SAMPLE), "-c", str(config_file))
    assert again.exit_code == 0 and "40 unchanged" in again.output and "0 added" in again.output
    listed = run("list", "-c", str(config_file))
    assert listed.exit_code == 0
    assert "heating-not-warm" in listed.output and "published" in listed.output
    tried = run("test", "暖气不热找谁", "-c", str(config_file))
    assert tried.exit_code == 0, tried.output
    first_row = next(line for line in tried.output.splitlines() if "│ 1 " in line)
    assert "heating-not-warm" in first_row and "是 yes" in first_row


def test_an_unanswerable_question_is_not_offered(config_file: Path) -> None:
    run("import", str(SAMPLE), "-c", str(config_file))
    tried = run("test", "楼上漏水泡了我家的天花板", "--top", "1", "-c", str(config_file))
    assert tried.exit_code == 0
    assert "否 no" in tried.output and "是 yes" not in tried.output


def test_a_bad_file_gives_one_line_naming_file_and_field(config_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "entries:\n  - key: heat\n    title: 暖气不热\n    phrasings: [暖气不热]\n"
        "    keywords: [暖气]\n    answer_zh: 请拨打96069\n",
        encoding="utf-8",
    )
    done = CliRunner().invoke(app, ["kb", "import", str(bad), "-c", str(config_file)])
    assert done.exit_code == 2
    assert "entries.0.phrasings" in done.output and str(bad.name) in done.output
    missing = CliRunner().invoke(
        app, ["kb", "import", str(tmp_path / "no.yaml"), "-c", str(config_file)]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_testing_an_empty_knowledge_base_says_what_to_do(config_file: Path) -> None:
    done = CliRunner().invoke(app, ["kb", "test", "暖气", "-c", str(config_file)])
    assert done.exit_code == 2 and "hotline kb import" in done.output
