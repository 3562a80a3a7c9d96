"""Prometheus metrics of one service process, in a registry of its own."""

from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from services.lifecycle.service_layer.failures import Failure
from services.lifecycle.service_layer.messages import Handled

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def build_version() -> str:
    try:
        return version("leads-service")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class GaugeReadings:
    """Figures read when /metrics is scraped."""

    outbox_backlog: int
    outbox_oldest_unsent_s: float
    consumer_lag: Mapping[str, int]
    held_actions: int
    dependencies: Mapping[str, bool]
    outbox_set_aside: int = 0


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.handled = Counter(
            "leads_messages_handled",
            "Messages consumed, by topic and outcome (applied, no_change, duplicate, held, "
            "rejected)",
            ["topic", "outcome"],
            registry=registry,
        )
        self.refused = Counter(
            "leads_messages_refused",
            "Messages answered on leads.rejected, by reason",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "leads_message_handling_seconds",
            "Time to handle one batch of a partition (commit and publish), retries included, "
            "by topic",
            ["topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.retries = Counter(
            "leads_retries",
            "Failed attempts retried, by kind (transient: may pass; unforeseen: parked after "
            "a few)",
            ["kind"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "leads_dead_letters",
            "Messages parked on leads.dead-letter, by error class",
            ["error_class"],
            registry=registry,
        )
        self.undecodable = Counter(
            "leads_consumer_undecodable_batches",
            "Fetched batches that could not be read (unknown codec, corrupt); the partition is "
            "set aside and retried each minute",
            ["topic", "partition"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "leads_outbox_backlog",
            "Committed outgoing messages not yet published",
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "leads_outbox_oldest_unsent_seconds",
            "Age of the oldest committed outgoing message not yet published (0 when none)",
            registry=registry,
        )
        self.lag = Gauge(
            "leads_consumer_lag",
            "Records of this replica's partitions not yet handled (end offset - position), "
            "by topic",
            ["topic"],
            registry=registry,
        )
        self.set_aside = Gauge(
            "leads_outbox_set_aside_rows",
            "Committed messages Kafka refused for good (too large, not allowed), set aside "
            "until `leads outbox retry`",
            registry=registry,
        )
        self.producers_renewed = Counter(
            "leads_kafka_producers_renewed",
            "Kafka producers replaced because their state was lost (sequence, epoch, id)",
            registry=registry,
        )
        self.held = Gauge(
            "leads_actions_held",
            "Partner actions waiting for their lead (early, or for another partner's lead)",
            registry=registry,
        )
        self.up = Gauge(
            "leads_dependency_up",
            "1 when the dependency answered the last check, else 0",
            ["dependency"],
            registry=registry,
        )
        Gauge("leads_build_info", "The running build", ["version"], registry=registry).labels(
            build_version()
        ).set(1)

    # --- the pipeline's observer ---------------------------------------------------------

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None:
        by_outcome = Tally(h.outcome for h in outcomes)
        for outcome, n in by_outcome.items():
            self.handled.labels(topic, outcome).inc(n)
        for reason, n in Tally(h.reason for h in outcomes if h.reason is not None).items():
            self.refused.labels(reason.value).inc(n)
        self.latency.labels(topic).observe(seconds)

    def retried(self, kind: Failure) -> None:
        self.retries.labels(kind.value).inc()

    def parked(self, error_class: str) -> None:
        self.dead_letters.labels(error_class).inc()

    def unreadable(self, topic: str, partition: int) -> None:
        self.undecodable.labels(topic, str(partition)).inc()

    def producer_renewed(self) -> None:
        self.producers_renewed.inc()

    # --- scrape ------------------------------------------------------------------------

    def render(self, sampled: GaugeReadings) -> bytes:
        self.outbox_backlog.set(sampled.outbox_backlog)
        self.outbox_oldest.set(sampled.outbox_oldest_unsent_s)
        self.lag.clear()
        for topic, behind in sampled.consumer_lag.items():
            self.lag.labels(topic).set(behind)
        self.held.set(sampled.held_actions)
        self.set_aside.set(sampled.outbox_set_aside)
        for dependency, up in sampled.dependencies.items():
            self.up.labels(dependency).set(1 if up else 0)
        return generate_latest(self.registry)


class SchedulerMetrics:
    """The deadline worker's figures, served on its own port."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.sweep_seconds = Histogram(
            "leads_scheduler_sweep_duration_seconds",
            "Time one sweep of the lease holder took",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.due_backlog = Gauge(
            "leads_scheduler_due_backlog",
            "Deadlines due when the last sweep started",
            registry=registry,
        )
        self.emitted = Counter(
            "leads_scheduler_commands_emitted",
            "Commands sent on leads.commands, by command",
            ["command"],
            registry=registry,
        )
        self.lease_held = Gauge(
            "leads_scheduler_lease_held",
            "1 while this replica holds the scheduler lease (the one that sweeps)",
            registry=registry,
        )
        Gauge("leads_build_info", "The running build", ["version"], registry=registry).labels(
            build_version()
        ).set(1)

    def swept(self, leader: bool, due: int, emitted: Mapping[str, int], seconds: float) -> None:
        self.lease_held.set(1 if leader else 0)
        if not leader:
            return
        self.sweep_seconds.observe(seconds)
        self.due_backlog.set(due)
        for command, n in emitted.items():
            self.emitted.labels(command).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
