"""Traces across Kafka: one trace runs from the upstream publisher through the service
to the events and notifications it publishes, and from a sweep to its commands."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.topics import Topic
from services.lifecycle.adapters.failures import classify
from services.lifecycle.adapters.kafka import KafkaCommands, Record
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.adapters.tracing import OtelTracing, configure
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.domain.deadlines import Deadline
from services.lifecycle.service_layer.deadline_sweep import Sweeper
from services.lifecycle.service_layer.failures import Failure
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Delivery, Handled
from services.lifecycle.service_layer.pipeline import Pipeline, RetryPolicy
from services.lifecycle.service_layer.ports import OutboxRow, Refusal
from services.lifecycle.service_layer.tracing import NoTracing
from tests import messages
from tests.messages import delivery


class Recorded:
    """Publisher and observer that keep what they see."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    async def publish(self, rows: Sequence[Any]) -> list[Refusal]:
        self.rows += rows
        return []

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None: ...
    def retried(self, kind: Failure) -> None: ...
    def parked(self, error_class: str) -> None: ...


def traced() -> tuple[OtelTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracing(provider), exporter


def trace_id_of(row: OutboxRow | Record) -> str:
    headers = {name: value.decode() for name, value in row.headers}
    assert headers["traceparent"] == headers["ce_traceparent"]
    return headers["traceparent"].split("-")[1]


async def test_a_leads_trace_runs_on_into_its_event_and_notifications(
    store: MongoStore, service: LeadService
) -> None:
    tracing, exporter = traced()
    with tracing.provider.get_tracer("upstream").start_as_current_span("publish lead") as up:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    upstream_trace = format_trace_id(up.get_span_context().trace_id)
    lead = messages.inbound()
    incoming = delivery(Topic.INBOUND, lead)
    record = Delivery(
        incoming.topic,
        incoming.topic_name,
        incoming.partition,
        incoming.offset,
        incoming.value,
        headers=(("traceparent", carrier["traceparent"].encode()),),
    )
    out = Recorded()
    pipeline = Pipeline(service, store, out, classify, out, RetryPolicy(), tracer=tracing)
    await pipeline.process([record])

    types = [row.topic.rsplit(".", 1)[-1] for row in out.rows]
    assert types == ["events", "state", "notifications"]
    assert {trace_id_of(row) for row in out.rows} == {upstream_trace}
    spans: dict[str, ReadableSpan] = {s.name: s for s in exporter.get_finished_spans()}
    process = spans[f"{Topic.INBOUND.value} process"]
    assert parent_of(process) == up.get_span_context().span_id
    assert parent_of(spans["decide"]) == parent_of(spans["commit"]) == process.context.span_id
    assert {format_trace_id(s.context.trace_id) for s in spans.values()} == {upstream_trace}


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


class Captured:
    def __init__(self) -> None:
        self.records: list[Record] = []

    async def publish_all(self, rows: Sequence[Record]) -> None:
        self.records += rows


class Due:
    def __init__(self, deadline: Deadline) -> None:
        self.left = [(deadline, 0)]

    async def due(self, now: datetime, limit: int) -> list[tuple[Deadline, int]]:
        found, self.left = self.left, []
        return found

    async def postpone(self, next_emissions: Sequence[tuple[Deadline, datetime]]) -> None: ...

    async def count_due(self, now: datetime) -> int:
        return len(self.left)


class Leader:
    async def acquire(self) -> bool:
        return True

    async def release(self) -> None: ...


async def test_a_sweep_is_a_trace_its_commands_carry() -> None:
    tracing, exporter = traced()
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    kafka = Captured()
    commands = KafkaCommands(kafka, "", "urn:test", clock, tracing)  # type: ignore[arg-type]
    deadline = Deadline("lead-1", "expire", clock.now())
    sweeper = Sweeper(
        Due(deadline), commands, Leader(), clock, 10, clock.now() - clock.now(), tracing
    )
    await sweeper.sweep()
    [sweep] = exporter.get_finished_spans()
    [command] = kafka.records
    assert trace_id_of(command) == format_trace_id(sweep.context.trace_id)


def test_without_otel_variables_there_is_no_tracing() -> None:
    assert isinstance(configure("leads", {}), NoTracing)
    assert isinstance(configure("leads", {"OTEL_TRACES_EXPORTER": "none"}), NoTracing)
    assert NoTracing().carrier() == ()


def test_a_failed_step_names_its_error_class_never_its_text() -> None:
    tracing, exporter = traced()
    message = tracing.message(delivery(Topic.INBOUND, messages.inbound()))
    secret = "grace@fabrikam.example"
    try:
        with message.step("decide"):
            raise ValueError(f"cannot take {secret}")
    except ValueError:
        pass
    message.end()
    (step,) = [s for s in exporter.get_finished_spans() if s.name == "decide"]
    assert step.status.description == "ValueError"
    assert not step.events  # no exception event with its message and stack
    assert secret not in repr([s.to_json() for s in exporter.get_finished_spans()])
