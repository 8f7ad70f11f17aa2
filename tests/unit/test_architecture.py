"""The floors are checked, not hoped for: import-linter passes on the tree and fails on a wrong arrow."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["root_packages"])


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_tree(target: Path) -> Path:
    for package in root_packages():
        shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def test_every_package_is_on_a_floor() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(root_packages())


def test_the_tree_keeps_its_floors(tmp_path: Path) -> None:
    result = lint(copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_store_importing_a_flow_is_refused(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    lines = tree / "db" / "lines.py"
    lines.write_text(lines.read_text() + "\nimport ivr.inbound  # noqa\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "BROKEN" in result.stdout and "db.lines -> ivr.inbound" in result.stdout


def test_telephony_importing_the_config_is_refused(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    menu = tree / "telephony" / "menu.py"
    menu.write_text(menu.read_text() + "\nimport core.config  # noqa\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "telephony.menu -> core.config" in result.stdout


def test_a_feature_importing_another_is_refused(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    tables = tree / "reports" / "tables.py"
    tables.write_text(tables.read_text() + "\nimport tickets.views  # noqa\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "1 broken" in result.stdout  # the features' own contract, not the floors
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "Features stand alone" in broken
    assert "reports.tables -> tickets.views" in broken
