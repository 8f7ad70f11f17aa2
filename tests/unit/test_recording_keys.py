"""A recording the store names is found by every reader: an absolute path, or a key in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.recording_keys import is_key, key_of, recordings_root, resolve
from tests.support.config import write_config

NAME = "ast1-1796000000.7_12345_13800138000.wav"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (f"/srv/state/cluster/ast1/recordings/2026/12/05/{NAME}", f"2026/12/05/{NAME}"),
        (
            "/x/recordings/survey/2026/12/05/ast1-1.2_attempt3.wav",
            "survey/2026/12/05/ast1-1.2_attempt3.wav",
        ),
        (f"2026/12/05/{NAME}", f"2026/12/05/{NAME}"),
        ("/x/recordings/notes.wav", None),
        ("/x/2026/12/05/sub/x.wav", None),
    ],
)
def test_the_key_is_the_dialplans_layout_at_the_end_of_a_path(path: str, key: str | None) -> None:
    assert key_of(path) == key


def test_a_key_joins_the_root_and_an_absolute_path_stays(tmp_path: Path) -> None:
    key = f"2026/12/05/{NAME}"
    assert is_key(key) and not is_key("/" + key)
    assert resolve(key, tmp_path / "store") == tmp_path / "store" / key
    present = tmp_path / "one-box" / key
    present.parent.mkdir(parents=True)
    present.write_bytes(b"RIFF")
    assert resolve(str(present), tmp_path / "store") == present


def test_a_node_path_written_after_its_file_was_shipped_finds_the_store(tmp_path: Path) -> None:
    key = f"2026/12/05/{NAME}"
    node_path = tmp_path / "cluster" / "ast1" / "recordings" / key  # gone: shipped
    store = tmp_path / "store"
    assert resolve(str(node_path), store) == node_path  # not in the store yet: as written
    (store / key).parent.mkdir(parents=True)
    (store / key).write_bytes(b"RIFF")
    assert resolve(str(node_path), store) == store / key


def test_one_box_keeps_its_recordings_folder_and_a_cluster_its_store(tmp_path: Path) -> None:
    one_box = load_config(write_config(tmp_path / "one"))
    assert recordings_root(one_box) == one_box.recordings_dir
    cluster = load_config(
        write_config(tmp_path / "two", cluster={"recordings_store": "shared/recordings"})
    )
    assert recordings_root(cluster) == (tmp_path / "two" / "shared" / "recordings").resolve()
