"""Prometheus metrics of the hotline's features, on the process's default registry.

Counted where the thing happens (the store, the IVR, the robot, the
reconciler); served by `hotline serve` at `/metrics` (hotline/health.py).
The Asterisk links' metrics live in `telephony.telemetry`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CALLS_ENDED = Counter(
    "hotline_calls_ended_total",
    "Inbound calls ended, by outcome (ticket: in the store; spooled: waiting for it).",
    ["outcome"],
)
TICKETS_CREATED = Counter(
    "hotline_tickets_created_total", "Tickets created from calls, by source.", ["source"]
)
SPOOLED_INTENTS = Counter(
    "hotline_spooled_intents_total",
    "Intents written to the durable spool because the database was away, by kind.",
    ["kind"],
)
SPOOL_PENDING = Gauge(
    "hotline_spool_pending", "Intents waiting in a spool at scrape time.", ["spool"]
)
SPOOL_QUARANTINED = Gauge(
    "hotline_spool_quarantined", "Spooled intents that could not be applied.", ["spool"]
)
ATTEMPTS_ENDED = Counter(
    "hotline_callback_attempts_total", "Robot call attempts ended, by outcome.", ["outcome"]
)
DISPATCH_PASSES = Counter(
    "hotline_robot_dispatch_passes_total", "Successful dispatch passes of the robot."
)
ROBOT_HEARTBEAT_AGE = Gauge(
    "hotline_robot_heartbeat_age_seconds",
    "Seconds since any robot's last successful dispatch pass (at scrape time; -1: never).",
)
RECONCILE_FINDINGS = Counter(
    "hotline_reconcile_findings_total",
    "What reconciler passes found and fixed or reported, by finding.",
    ["finding"],
)
RECORDINGS_FREE_BYTES = Gauge(
    "hotline_recordings_free_bytes", "Free space on the recordings disk at scrape time."
)
