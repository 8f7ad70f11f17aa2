"""Asterisk's call ids, with or without the node's name in front: one grammar for every reader.

One Asterisk names a channel `1700000000.12` (the epoch second it started and a
counter). Two Asterisk nodes can hand out the same pair, so each node of a
cluster gets its own `systemname` (asterisk.conf `[options]`, config.yaml
`asterisk.systemname`), and Asterisk then writes `ast1-1700000000.12` for the
channel's Uniqueid and Linkedid, in queue_log's callid, in the CDR and in the
AGI environment. The recording names, the reconciler and the call rows read
both forms through this module:

    uniqueid   = [ systemname "-" ] digits "." digits
    systemname = letter { letter | digit | "_" }      (1 to 32 characters)

A systemname starts with a letter, so the node never reads as part of the
number, and it has no "-" or ".", so the first "-" ends it. The names of our own
synthetic call ids (`callback-TASK-N`, `attempt-N`) are reserved: a node named
`callback` would make Asterisk's ids look like an agent-first callback's.
"""

from __future__ import annotations

import re

SYSTEMNAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,31}"
UNIQUEID_PATTERN = rf"(?:{SYSTEMNAME_PATTERN}-)?[0-9]+\.[0-9]+"
SYSTEMNAME = re.compile(SYSTEMNAME_PATTERN)
UNIQUEID = re.compile(rf"(?:(?P<node>{SYSTEMNAME_PATTERN})-)?(?P<number>[0-9]+\.[0-9]+)")
RESERVED = frozenset({"callback", "attempt"})  # prefixes of our own call ids


def is_systemname(name: str) -> bool:
    """A name a node may carry (the grammar above, not a reserved prefix)."""
    return SYSTEMNAME.fullmatch(name) is not None and name.lower() not in RESERVED


def is_uniqueid(value: str) -> bool:
    """An Asterisk Uniqueid of either form."""
    return UNIQUEID.fullmatch(value) is not None


def node_of(uniqueid: str | None) -> str | None:
    """The node's name in an Asterisk Uniqueid; None for one box's ids and anything else."""
    match = UNIQUEID.fullmatch(uniqueid or "")
    return match["node"] if match else None


def number_of(uniqueid: str) -> str | None:
    """The `epoch.counter` part of an Asterisk Uniqueid (without the node); None if not one."""
    match = UNIQUEID.fullmatch(uniqueid)
    return match["number"] if match else None
