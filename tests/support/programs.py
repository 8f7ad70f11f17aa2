"""Programs a test runs (kamailio, haproxy): skipped where missing, except in the full run.

`./hotline.sh test` installs them and sets HOTLINE_TESTS_REQUIRE_ALL=1, where a
missing program fails its tests instead of skipping them (as PostgreSQL does).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.cluster.checks import ToolMissing, tool


def installed(name: str) -> Path:
    """The program's path; skip the test without it (fail it in the full run)."""
    try:
        return tool(name)
    except ToolMissing as exc:
        if os.environ.get("HOTLINE_TESTS_REQUIRE_ALL") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
