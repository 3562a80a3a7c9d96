"""Traces across Kafka, as the service layer sees them: a trace per handled message,
continuing the upstream one, with a step for deciding and one for committing, and
the headers that carry it on to what the message publishes.

Off unless configured (`adapters.tracing`): then every call here costs nothing and
nothing is added to what is published.
"""

import contextlib
from collections.abc import Iterator
from typing import Protocol

from services.lifecycle.service_layer.messages import Delivery

Headers = tuple[tuple[str, bytes], ...]


class MessageTrace(Protocol):
    def step(self, name: str) -> contextlib.AbstractContextManager[None]:
        """A step of this message's handling (decide), current while inside."""
        ...

    def step_between(self, name: str, start_ns: int, end_ns: int) -> None:
        """A step shared with the rest of its batch (the commit), as it happened."""
        ...

    def carrier(self) -> Headers:
        """The headers that carry this trace on to what the message publishes."""
        ...

    def end(self) -> None: ...

    @property
    def trace_id(self) -> str | None:
        """For log lines about this message (None when not traced)."""
        ...


class Tracer(Protocol):
    def message(self, delivery: Delivery) -> MessageTrace:
        """A trace for one handled message, continuing the one its headers carry."""
        ...

    def run(self, name: str) -> contextlib.AbstractContextManager[None]:
        """A trace of its own (a sweep), current while inside."""
        ...

    def carrier(self) -> Headers:
        """The headers that carry the current trace on."""
        ...


class _Untraced:
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        yield

    def step_between(self, name: str, start_ns: int, end_ns: int) -> None:
        return None

    def carrier(self) -> Headers:
        return ()

    def end(self) -> None:
        return None

    @property
    def trace_id(self) -> str | None:
        return None


UNTRACED = _Untraced()


class NoTracing:
    """Tracing off: nothing recorded, nothing added to what is published."""

    def message(self, delivery: Delivery) -> MessageTrace:
        return UNTRACED

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[None]:
        yield

    def carrier(self) -> Headers:
        return ()
