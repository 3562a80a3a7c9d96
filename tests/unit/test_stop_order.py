"""The hand-over on SIGTERM happens in order: readiness fails first, the consumer
finishes its batches and leaves, the relay flushes, the read API drains, and only
then are the producer and the database closed."""

import asyncio
from typing import Any

from services.lifecycle.entrypoints.app import LifecycleApp
from services.lifecycle.settings import Settings


class Step:
    """Stands in for one part of the service; records when it is stopped."""

    def __init__(self, name: str, calls: list[str], app: LifecycleApp) -> None:
        self.name, self.calls, self.app = name, calls, app

    async def stopped(self, *_: Any) -> None:
        ready = await self.app._readiness()
        self.calls.append(f"{self.name} (ready={all(ready.values())})")


async def test_stopping_hands_over_in_order() -> None:
    app = LifecycleApp(Settings(jwt_secret="x" * 32))
    calls: list[str] = []

    def step(name: str) -> Any:
        return Step(name, calls, app).stopped

    app.consumer.stop = step("consumer: finish batches, commit, leave the group")  # type: ignore[method-assign]
    app.relay.stop = lambda: calls.append("relay: stop after the batch in hand")  # type: ignore[method-assign]
    app._relay_task = asyncio.create_task(step("relay: flushed")())
    app.http.stop = step("read API: drained")  # type: ignore[method-assign]
    app.producer.stop = step("producer: closed")  # type: ignore[method-assign]
    app.mongo.close = step("database: closed")  # type: ignore[method-assign]
    await app._stop()
    assert calls == [
        "consumer: finish batches, commit, leave the group (ready=False)",
        "relay: stop after the batch in hand",
        "relay: flushed (ready=False)",
        "read API: drained (ready=False)",
        "producer: closed (ready=False)",
        "database: closed (ready=False)",
    ]
