"""Prometheus metrics of the Asterisk links (FastAGI and AMI), on the process's registry.

Defined here, not higher up, because telephony imports nothing of ours; the
composition serves them at `/metrics` with the rest.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

AGI_COMMAND_SECONDS = Histogram(
    "hotline_agi_command_seconds",
    "Time from sending an AGI command to its final reply (prompts and recordings included).",
    ["command"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
AGI_REQUESTS = Counter(
    "hotline_agi_requests_total",
    "FastAGI requests by route and result (failed: the dialplan fallback took the call).",
    ["route", "result"],
)
AMI_RECONNECTS = Counter(
    "hotline_ami_reconnects_total", "AMI links re-established after a loss (all clients)."
)
