"""Prometheus metrics of one service process, in a registry of its own."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from services.lifecycle.service_layer.handler import Handled

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "leads_messages_handled",
            "Messages consumed, by topic and outcome (applied, no_change, duplicate, rejected)",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "leads_messages_refused",
            "Messages answered on leads.rejected, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leads_message_handling_seconds",
            "Time to handle one message, retries included, by topic",
            ["topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "leads_outbox_backlog",
            "Committed outgoing messages not yet published",
            registry=self.registry,
        )

    def observe(self, topic: str, handled: Handled, seconds: float) -> None:
        self.handled.labels(topic, handled.outcome).inc()
        if handled.reason is not None:
            self.refused.labels(handled.reason.value).inc()
        self.latency.labels(topic).observe(seconds)

    def render(self, outbox_backlog: int) -> bytes:
        self.outbox_backlog.set(outbox_backlog)
        return generate_latest(self.registry)
