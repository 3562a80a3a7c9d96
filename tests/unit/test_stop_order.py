"""The hand-over on SIGTERM happens in order: readiness fails first, the consumer
finishes its batches and leaves, the relay flushes, the read API drains, and only
then are the producer and the database closed."""

from typing import Any

from pymongo import AsyncMongoClient

from services.lifecycle.entrypoints.app import LifecycleApp
from services.lifecycle.settings import Settings


class Part:
    """Stands in for one part of the service: records when it is stopped, and
    whether the service still read as ready then."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls
        self.app: LifecycleApp | None = None

    async def stopped(self, *_: Any) -> None:
        assert self.app is not None
        ready = await self.app.readiness()
        self.calls.append(f"{self.name} (ready={all(ready.values())})")

    async def stop(self, *_: Any) -> None:
        await self.stopped()

    async def close(self) -> None:
        await self.stopped()

    def wake(self) -> None: ...

    async def run(self) -> None:
        await self.stopped()


class Database(AsyncMongoClient[dict[str, Any]]):
    """A client that never connects (nothing runs here) and records its close."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__("mongodb://127.0.0.1:1/?directConnection=true", connect=False)
        self.part = Part("database: closed", calls)

    async def close(self) -> None:
        await self.part.stopped()


class Relay(Part):
    def stop(self) -> None:  # type: ignore[override]
        self.calls.append("relay: stop after the batch in hand")


async def test_stopping_hands_over_in_order() -> None:
    calls: list[str] = []
    parts: dict[str, Any] = {
        "consumer": Part("consumer: finish batches, commit, leave the group", calls),
        "relay": Relay("relay: flushed", calls),
        "http": Part("read API: drained", calls),
        "producer": Part("producer: closed", calls),
    }
    mongo = Database(calls)
    app = LifecycleApp(Settings(jwt_secret="x" * 32, erasure_key="k"), mongo=mongo, **parts)
    for part in [*parts.values(), mongo.part]:
        part.app = app
    await app.start_relay()  # as the start does: the relay runs until stopped
    await app.stop()
    assert calls == [
        "consumer: finish batches, commit, leave the group (ready=False)",
        "relay: stop after the batch in hand",
        "relay: flushed (ready=False)",
        "read API: drained (ready=False)",
        "producer: closed (ready=False)",
        "database: closed (ready=False)",
    ]
