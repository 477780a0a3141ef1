"""Prometheus metrics, on a registry owned by the application (no module-level collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the daemon exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "allegro_sync_messages_total",
            "Consumed messages by queue and outcome (ack, duplicate, refused, retry, dead, split)",
            ["queue", "outcome"],
            registry=self.registry,
        )
        self.consumer_db_pauses = Counter(
            "allegro_sync_consumer_database_pauses_total",
            "Times a consumer paused because the database was unavailable",
            ["queue"],
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "allegro_sync_outbox_published_total",
            "Outbox messages published with a confirm",
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "allegro_sync_outbox_pending",
            "Outbox messages waiting to be published (as last seen by the relay)",
            registry=self.registry,
        )
        self.allegro_requests = Counter(
            "allegro_sync_allegro_requests_total",
            "Requests sent to the Allegro API by endpoint group and status class",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.journal_events = Counter(
            "allegro_sync_journal_events_total",
            "Journal events published, by journal",
            ["journal"],
            registry=self.registry,
        )

        self.reconciliation_mismatches = Counter(
            "allegro_sync_reconciliation_mismatches_total",
            "Desired offer changes the periodic reconciliation found missing and queued"
            " (stored ERP value, pending change and mirror disagreed), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.reconciliation_last = Gauge(
            "allegro_sync_reconciliation_last_mismatches",
            "Changes the last reconciliation run queued",
            registry=self.registry,
        )

        self.order_sweep_found = Counter(
            "allegro_sync_order_sweep_found_total",
            "Checkout forms the order sweep found that the order journal had not delivered"
            " (handed to the order handler)",
            registry=self.registry,
        )
        self.order_sweep_requests = Histogram(
            "allegro_sync_order_sweep_requests",
            "Allegro requests of one account's order sweep (one per 100 forms changed since"
            " the last sweep)",
            buckets=(1, 2, 3, 5, 10, 20, 50, 100, 1000),
            registry=self.registry,
        )

        self.tracking_reads = Counter(
            "allegro_sync_tracking_reads_total",
            "Tracking numbers whose carrier tracking was read (up to 20 a request)",
            registry=self.registry,
        )
        self.tracking_changes = Counter(
            "allegro_sync_tracking_status_changes_total",
            "Delivery status changes sent to the ERP (shipment.status_changed), by status",
            ["status"],
            registry=self.registry,
        )
        self.tracking_ended = Counter(
            "allegro_sync_tracking_ended_total",
            "Tracking numbers no longer read, by why"
            " (delivered, returned, ended, given_up, untracked)",
            ["reason"],
            registry=self.registry,
        )
        self.sent_step_given_up = Counter(
            "allegro_sync_sent_step_given_up_total",
            "Tracking numbers whose SENT status step was given up (it kept failing:"
            " SENT_STEP_MAX_ATTEMPTS or SENT_STEP_GIVE_UP_AFTER)",
            registry=self.registry,
        )
        self.tracking_due = Gauge(
            "allegro_sync_tracking_due",
            "Tracking numbers due for a read at the start of the last round",
            registry=self.registry,
        )
        self.retention_pruned = Counter(
            "allegro_sync_retention_pruned_total",
            "Rows the retention service deleted, by table (rows older than their retention)",
            ["table"],
            registry=self.registry,
        )
        # The journal scheduler (daemon/pollers.py): per-account poll age without a label per
        # account (thousands of them): the oldest overall and a histogram of all.
        self.poll_age_max = Gauge(
            "allegro_sync_poll_age_max_seconds",
            "Seconds since the least recently read journal of this replica's accounts was read",
            ["journal"],
            registry=self.registry,
        )
        self.poll_age = Histogram(
            "allegro_sync_poll_age_seconds",
            "Seconds since an account's journal was last read, observed as each poll starts",
            ["journal"],
            buckets=(1, 2, 5, 10, 30, 60, 90, 120, 300, 600, 900, 1800, 3600, 21600, 86400),
            registry=self.registry,
        )
        self.idle_polls = Counter(
            "allegro_sync_idle_polls_total",
            "Polls of a journal backing off after quiet (they spend the idle budget)",
            ["journal"],
            registry=self.registry,
        )
        self.polls_waiting = Gauge(
            "allegro_sync_polls_waiting",
            "Idle polls due and waiting for the idle budget (IDLE_POLL_BUDGET_SHARE)",
            registry=self.registry,
        )
        self.polled_accounts = Gauge(
            "allegro_sync_polled_accounts",
            "Active accounts whose journals this replica polls",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
