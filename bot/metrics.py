"""What ``/metrics`` tells a Prometheus server: counters and histograms of this process.

The metrics live in one registry per process (the server's). Counters only grow; tests
read them before and after to see a difference. Outbox gauges are read from the database
at scrape time (``bot.web.ops``), so every replica reports the shared queue as it is.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter("leadbot_events_accepted", "Events stored and counted", registry=REGISTRY)
EVENTS_DUPLICATE = Counter(
    "leadbot_events_duplicate", "Events already stored (same messageId)", registry=REGISTRY
)
REQUESTS_REJECTED = Counter(
    "leadbot_requests_rejected",
    "Requests refused, by reason (signature, write_key, invalid, too_large, unavailable)",
    ["endpoint", "reason"],
    registry=REGISTRY,
)
EVENTS_DROPPED = Counter(
    "leadbot_events_dropped",
    "Calls dropped from an SDK request (/v1/*) because they could not be used",
    ["endpoint"],
    registry=REGISTRY,
)
EVENT_TIMES_CLAMPED = Counter(
    "leadbot_event_times_clamped",
    "Event times far in the future (after clock correction), stored as the time received",
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "leadbot_ingest_seconds",
    "Time from a webhook's arrival to its answer, for stored requests",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
WRITER_RESTARTS = Counter(
    "leadbot_writer_restarts", "Times the ingest writer process was restarted", registry=REGISTRY
)
OUTBOX_MESSAGES = Gauge(
    "leadbot_outbox_messages",
    "Outbox messages by transport and status, read from the database at scrape time",
    ["transport", "status"],
    registry=REGISTRY,
)
OUTBOX_DELIVERIES = Counter(
    "leadbot_outbox_deliveries",
    "Delivery attempts by transport and outcome (sent, found: an earlier post was found,"
    " retry, dead)",
    ["transport", "outcome"],
    registry=REGISTRY,
)
RESCORE_SECONDS = Histogram(
    "leadbot_rescore_seconds",
    "Time to rescore every lead (activation, rollback)",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
SCHEDULER_RUNS = Counter(
    "leadbot_scheduler_runs",
    "Scheduled job runs by job and outcome (ok, failed, skipped)",
    ["job", "outcome"],
    registry=REGISTRY,
)
