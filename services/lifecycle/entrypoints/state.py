"""`leads state republish`: every stored lead's state on `leads.state` again (to fill a
new or rebuilt topic), through the outbox that the running service's relay drains."""

import asyncio
import sys

from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.entrypoints.set_aside import with_store
from services.lifecycle.service_layer.state_republish import Progress, StateRepublisher
from services.lifecycle.settings import Settings


def republish(settings: Settings, partner_id: str | None, restart: bool) -> int:
    async def run(store: MongoStore) -> int:
        republisher = StateRepublisher(store, SystemClock())
        done = await republisher.run(partner_id, restart, _show)
        print(file=sys.stderr)
        print(
            f"{done.republished} lead state(s) in the outbox: the relay publishes them; "
            f"{done.skipped} changed meanwhile and published a newer state themselves"
        )
        return 0

    return asyncio.run(with_store(settings, run))


def _show(progress: Progress) -> None:
    # Counts only, on one line: no lead id, no personal data.
    print(f"\rrepublished {progress.republished}", end="", file=sys.stderr, flush=True)
