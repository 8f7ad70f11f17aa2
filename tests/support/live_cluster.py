"""A real cluster for the live tests: its folder and config, and `hotline` run as an
operator runs it.

pytest's own temporary folders are private to root, and PostgreSQL runs as
`postgres`: a cluster's state lives in a folder of its own under /tmp. The prompts
are the session's, built once. Leaving, whatever a test left running is brought down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.config import HotlineConfig, load_config
from core.paths import project_dir
from tests.support.config import TEST_SETTINGS, write_config
from tests.support.programs import installed

SLOW = 600  # a loaded 2-core machine starts a dozen processes slowly; nothing measures speed


def hotline_cli(
    source: Path, *args: str, timeout: float = SLOW
) -> subprocess.CompletedProcess[str]:
    """`hotline ARGS --config SOURCE` in a process of its own, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args, "--config", str(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=project_dir(),
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@contextmanager
def cluster_folder(
    prefix: str,
    built_prompts: HotlineConfig,
    cluster: dict[str, object],
    database_url: str,
    **settings: object,
) -> Iterator[HotlineConfig]:
    """The cluster's config in a folder of its own; `cluster down` and the folder gone after."""
    for program in ("kamailio", "haproxy", "sipp"):
        installed(program)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    merged = {
        **TEST_SETTINGS,
        "database": {"url": database_url},
        "paths": {
            "state_dir": "var",
            "recordings_dir": "var/recordings",
            "sounds_dir": str(built_prompts.sounds_dir),
        },
        **settings,
    }
    config = load_config(write_config(folder, cluster=cluster, **merged))
    try:
        yield config
    finally:
        hotline_cli(config.source, "cluster", "down")
        shutil.rmtree(folder, ignore_errors=True)
