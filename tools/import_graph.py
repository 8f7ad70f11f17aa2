"""Print the import graph between the top-level packages: `python -m tools.import_graph`.

Each line is `a -> b, c` (a imports b and c somewhere, at any depth). Built with
grimp, the graph library under import-linter; by default the packages are the
floors that `pyproject.toml` names, or the ones given as arguments.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import grimp


def floors() -> list[str]:
    """The root packages that import-linter checks."""
    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["root_packages"])


def package_edges(packages: list[str]) -> dict[str, set[str]]:
    """For each package, the other packages any of its modules import."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    edges: dict[str, set[str]] = {p: set() for p in packages}
    for importer in packages:
        for imported in packages:
            if importer != imported and graph.direct_import_exists(
                importer=importer, imported=imported, as_packages=True
            ):
                edges[importer].add(imported)
    return edges


def main(argv: list[str]) -> None:
    packages = argv or floors()
    for importer, imported in package_edges(packages).items():
        print(f"{importer} -> {', '.join(sorted(imported)) or '(nothing of ours)'}")


if __name__ == "__main__":
    main(sys.argv[1:])
