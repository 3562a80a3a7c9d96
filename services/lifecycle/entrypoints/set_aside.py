"""`leads outbox list | retry`: committed messages Kafka refused for good, and sending
them again once the cause is fixed (a topic's size limit raised, an ACL granted)."""

import asyncio
import sys
from collections.abc import Awaitable, Callable

from services.lifecycle import bootstrap
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.adapters.refusals import mongodb_refusals
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.settings import Settings

Command = Callable[[MongoStore], Awaitable[int]]


def list_rows(settings: Settings) -> int:
    async def run(store: MongoStore) -> int:
        rows = await store.outbox.set_aside_rows()
        if not rows:
            print("nothing is set aside")
        for row in rows:
            # Ids, places and errors only: the value may hold personal data.
            print(
                f"{row.id}  set aside {row.set_aside_at.isoformat()}  {row.topic}  "
                f"lead_id={row.lead_id}  {row.size} bytes  {row.error}"
            )
        return 0

    return asyncio.run(with_store(settings, run))


def retry(settings: Settings, ids: list[str] | None) -> int:
    async def run(store: MongoStore) -> int:
        found = [row.id for row in await store.outbox.set_aside_rows(ids)]
        for row_id in sorted(set(ids or ()) - set(found)):
            print(f"nothing set aside under {row_id}", file=sys.stderr)
        retried = await store.retry_set_aside(found) if found else 0
        print(f"{retried} row(s) back in the outbox: the relay publishes them")
        return 0 if len(found) == len(set(ids or found)) else 1

    return asyncio.run(with_store(settings, run))


async def with_store(settings: Settings, run: Command, keyed: bool = False) -> int:
    """`run` on the service's store; `keyed` when it writes leads (LEADS_ERASURE_KEY)."""
    client = bootstrap.mongo_client(settings)
    database = bootstrap.database(settings, client)
    store = bootstrap.store(settings, database, SystemClock(), keyed=keyed)
    try:
        async with mongodb_refusals(settings.mongodb_uri):
            return await run(store)
    finally:
        await client.close()
