"""Where a recording the store names is on disk: an absolute path (one box) or a store key.

One box names each recording by its absolute path: the dialplan writes into
`paths.recordings_dir` and every reader opens that path. A cluster records on
each node's own disk and the node daemon ships the finished file into the
shared store (`cluster.recordings_store`, NFS on a real cluster). The store's
rows then keep the file's key in the store, the dialplan's own layout under
the recordings folder:

    key = [ folder "/" ] YYYY "/" MM "/" DD "/" name ".wav"   (folder: survey or bench)

so every host finds the file under its own mount of the store, whatever path
the node had. Every reader goes through `resolve`: a key is joined to the
recordings root, an absolute path is itself. A row written with a node's
path after its file was shipped (a spooled call end replayed late) still
finds the file: a node path that is gone resolves to its key in the store.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from core.config import HotlineConfig

# the dialplan's folders beside the IVR's days: the robot's surveys, the bench's calls
FOLDERS = ("survey", "bench")
KEY = re.compile(rf"(?:(?:{'|'.join(FOLDERS)})/)?[0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}}/[^/]+\.wav")
# a key's tail inside a longer (node) path: the last match of the layout above
KEY_TAIL = re.compile(rf"(?:^|/)({KEY.pattern})$")


def recordings_root(config: HotlineConfig) -> Path:
    """The folder every key is relative to: the cluster's store, else the recordings folder."""
    if config.cluster is not None:
        return config.path(config.cluster.recordings_store)
    return config.recordings_dir


def is_key(stored: str) -> bool:
    """A store-relative key (not an absolute path)."""
    return KEY.fullmatch(stored) is not None


def key_of(path: str | Path) -> str | None:
    """The store key a recording's path ends with; None when it does not follow the layout."""
    text = PurePosixPath(path).as_posix()
    match = KEY_TAIL.search(text)
    return match[1] if match else None


def resolve(stored: str, root: Path) -> Path:
    """The file a row's recording names: a key under root, an absolute path as it is.

    An absolute path that is gone but ends with a key that is in the store
    resolves to the store's file (a node's path written after the file was
    shipped). On one box the root is the recordings folder, so the path is
    unchanged.
    """
    if is_key(stored):
        return root / stored
    path = Path(stored)
    if path.is_absolute() and not path.exists():
        key = key_of(path)
        if key is not None and (root / key).exists():
            return root / key
    return path
