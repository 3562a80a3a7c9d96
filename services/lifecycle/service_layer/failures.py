"""What to do when handling fails: wait out what may pass, stop when stopping,
and give up on the rest after a few tries.

Which errors are which is the adapters' knowledge (`adapters.failures`): the
service layer only sees the three kinds.
"""

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Failure(StrEnum):
    TRANSIENT = "transient"
    """The broker or the database is away, slow or busy, or a write conflicted: retry
    for as long as it lasts."""
    STOPPING = "stopping"
    """The process is stopping and its clients are closing: abandon the work in hand
    uncommitted (Kafka delivers it again)."""
    UNFORESEEN = "unforeseen"
    """A bug, or an input no rule foresaw: retried a few times, then parked."""
    TOO_LARGE = "too_large"
    """The batch's transaction is too large for the database (its cache): commit it in
    halves; one message alone that is still too large is unforeseen."""


Classify = Callable[[BaseException], Failure]


class Stopping(Exception):
    """Raised to abandon work in hand because the process is stopping."""


@dataclass
class Backoff:
    """Waits that double from `first` up to `ceiling`."""

    first: float = 0.1
    ceiling: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    next_delay: float = -1.0

    def __post_init__(self) -> None:
        self.next_delay = min(self.first, self.ceiling)

    async def wait(self) -> None:
        delay = self.next_delay
        self.next_delay = min(delay * 2, self.ceiling)
        await self.sleep(delay)


def where_it_failed(error: BaseException) -> str:
    """The error's class and the innermost place it was raised, never its message
    (which may quote the input)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} in {last.name} ({_short(last.filename)}:{last.lineno})"


def _short(path: str) -> str:
    for root in ("services/", "contracts/", "site-packages/"):
        if root in path:
            return path[path.index(root) :]
    return path.rsplit("/", 1)[-1]
