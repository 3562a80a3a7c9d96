"""The one clock. Injected everywhere so tests and demos control time."""

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def to_millis(moment: datetime) -> datetime:
    """MongoDB stores milliseconds: truncating up front keeps stored and emitted times equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock:
    def now(self) -> datetime:
        return to_millis(datetime.now(UTC))


class FixedClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = to_millis(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now = to_millis(self._now + by)
