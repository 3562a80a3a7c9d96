"""OpenTelemetry behind the service layer's `Tracer`, configured from the standard
OTEL_* variables: off unless they name an exporter (OTEL_TRACES_EXPORTER, or an OTLP
endpoint in OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).

The W3C trace context travels in Kafka headers: `traceparent`/`tracestate` (what
OpenTelemetry's Kafka instrumentations read and write) or, on CloudEvents records,
the distributed-tracing extension's `ce_traceparent`/`ce_tracestate`. Both are
read on what comes in and written on what goes out.
"""

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.lifecycle.service_layer.messages import Delivery
from services.lifecycle.service_layer.tracing import Headers, MessageTrace, NoTracing, Tracer

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_FIELDS = ("traceparent", "tracestate")


def configure(service_name: str, environ: Mapping[str, str] = os.environ) -> Tracer:
    """The tracer the OTEL_* variables ask for: no tracing at all when they name no exporter."""
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not names and endpoint:
        names = ["otlp"]
    exporters = [e for e in map(_exporter, names) if e is not None]
    if not exporters:
        return NoTracing()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on", extra={"exporters": names})
    return OtelTracing(provider)


def shutdown(tracer: Tracer) -> None:
    """Send the spans still buffered (on stop)."""
    if isinstance(tracer, OtelTracing):
        tracer.provider.shutdown()


def _exporter(name: str) -> SpanExporter | None:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    if name != "none":
        log.warning("unknown OTEL_TRACES_EXPORTER, ignored", extra={"exporter": name})
    return None


def _context_of(headers: Headers) -> Any:
    """The upstream trace context a record carries, W3C or CloudEvents style."""
    found: dict[str, str] = {}
    for name, value in headers:
        field = name.removeprefix("ce_")
        if field in _FIELDS and field not in found:
            found[field] = value.decode("ascii", "replace")
    return _PROPAGATOR.extract(found)


def _headers_of(context: Any) -> Headers:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple(
        (prefix + name, value.encode()) for name, value in carrier.items() for prefix in ("", "ce_")
    )


class OtelTracing:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("leads.lifecycle")

    def message(self, delivery: Delivery) -> MessageTrace:
        span = self._tracer.start_span(
            f"{delivery.topic_name} process",
            context=_context_of(delivery.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": delivery.topic_name,
                "messaging.destination.partition.id": str(delivery.partition),
                "messaging.kafka.offset": delivery.offset,
            },
        )
        return _OtelMessageTrace(self._tracer, span)

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[None]:
        with _span(self._tracer, name):
            yield

    def carrier(self) -> Headers:
        span = trace.get_current_span()
        return _headers_of(trace.set_span_in_context(span)) if span.is_recording() else ()


class _OtelMessageTrace:
    def __init__(self, tracer: trace.Tracer, span: Span) -> None:
        self._tracer = tracer
        self._span = span
        self._context = trace.set_span_in_context(span)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        with _span(self._tracer, name, self._context):
            yield

    def step_between(self, name: str, start_ns: int, end_ns: int) -> None:
        self._tracer.start_span(name, context=self._context, start_time=start_ns).end(end_ns)

    def carrier(self) -> Headers:
        return _headers_of(self._context)

    def end(self) -> None:
        self._span.end()

    @property
    def trace_id(self) -> str | None:
        return trace.format_trace_id(self._span.get_span_context().trace_id)


@contextlib.contextmanager
def _span(tracer: trace.Tracer, name: str, context: Context | None = None) -> Iterator[None]:
    """A span that names a failure by its class only: an error's text may quote the
    message it failed on, a customer's data among it."""
    with tracer.start_as_current_span(
        name, context=context, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield
        except BaseException as error:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
