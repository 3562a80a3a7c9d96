"""Sweep benchmark: does one sweep's cost follow the number due, or the number stored?

Stores the deadlines of N leads as the service does (the default is 50k and
then 200k leads): half of them waiting for an answer (an expiry and two
reminders each), half accepted deals (their idle nudge and escalation, their
close date). The same 5k leads have something due: half are past their expiry,
half are deals idle past the nudge. Times one sweep that emits those 5k
commands to Kafka, and a second sweep that finds nothing left to do. Prints the
figures and MongoDB's plan for the due query.

    python bench/sweep.py --stored 50000,200000 --due 5000
"""

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.actions import PARTNER_ACTION
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.adapters import deadlines as stored
from services.lifecycle.adapters.deadlines import MongoDueDeadlines
from services.lifecycle.adapters.kafka import KafkaCommands, KafkaPublisher, ensure_topics
from services.lifecycle.adapters.mongo import MongoStore, connect
from services.lifecycle.domain import deadlines
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.deadline_sweep import Sweeper
from services.lifecycle.settings import Settings
from tests import messages
from tests.servers import isolated_settings

CLOCK = SystemClock()
WINDOWS = Windows()
PROFILE = PartnerProfile.model_validate(messages.profile())


class Timed:
    """Adds up the time spent in each awaited method of what it wraps."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


class AlwaysLeader:
    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def lead_deadlines(n: int, overdue: bool) -> dict[str, Any]:
    """One lead's deadlines as the service stores them. Even leads wait for an answer,
    odd ones are accepted deals; an overdue one came (or was accepted) 15 days ago,
    so its expiry or its nudge is due, and nothing else."""
    now = CLOCK.now()
    arrived = now - timedelta(days=15) if overdue else now
    message = InboundLead.model_validate(messages.inbound(received_at=arrived.isoformat()))
    lead = rules.receive(None, message, arrived, WINDOWS, PROFILE).lead
    if n % 2:
        accept = PARTNER_ACTION.validate_python(messages.action(lead.lead_id, "accept"))
        lead = rules.act(lead, accept, arrived).lead
        kept = deadlines.deal_deadlines(lead, WINDOWS)
    else:
        # An overdue lead's reminders were sent long ago: only its expiry is left.
        kept = tuple(
            d for d in deadlines.deadlines_of(lead, WINDOWS) if not overdue or d.command == "expire"
        )
    return stored.to_document(lead.lead_id, kept)


async def store(collection: AsyncCollection[dict[str, Any]], leads: int, due: int) -> None:
    progress = tqdm(total=leads, unit="lead", desc="storing", file=sys.stderr)
    batch: list[dict[str, Any]] = []
    for n in range(leads):
        batch.append(lead_deadlines(n, overdue=n < due))
        if len(batch) >= 1000 or n == leads - 1:
            await collection.insert_many(batch, ordered=False)
            progress.update(len(batch))
            batch = []
    progress.close()


async def bench(settings: Settings, leads: int, due: int) -> None:
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [Topic.COMMANDS.named(settings.topic_prefix)],
        settings.topic_partitions,
        settings.topic_replication_factor,
    )
    mongo = connect(settings.mongodb_uri)
    database = settings.mongodb_database
    await MongoStore(mongo[database], CLOCK).ensure_indexes()
    collection = mongo[database]["deadlines"]
    await store(collection, leads, due)
    kafka = KafkaPublisher.of(settings, "test")
    await kafka.start()
    due_deadlines = MongoDueDeadlines(mongo[database])
    timed_store = Timed(due_deadlines)
    timed_kafka = Timed(KafkaCommands(kafka, settings.topic_prefix, "urn:bench", CLOCK))
    sweeper = Sweeper(
        timed_store,
        timed_kafka,
        AlwaysLeader(),
        CLOCK,
        batch_size=settings.sweep_batch,
        retry_after=settings.command_retry_after,
    )
    try:
        plan = await due_deadlines.explain_due(CLOCK.now(), settings.sweep_batch)
        baseline = await server_baseline(collection, skip=due)
        first = await sweeper.sweep()
        spent = {**timed_store.seconds, **timed_kafka.seconds}
        second = await sweeper.sweep()
        stored_count = await collection.count_documents({})
    finally:
        await kafka.stop()
        await mongo.drop_database(database)
        await mongo.close()

    emitted = sum(first.emitted.values())
    print(f"\n{leads} leads stored ({stored_count} documents), {due} of them with something due")
    print(
        f"  sweep with {first.due} due:  {first.seconds * 1000:8.0f} ms  "
        f"({dict(first.emitted)} in {first.batches} batches of "
        f"<= {settings.sweep_batch}, {emitted / first.seconds:.0f} commands/s)"
    )
    print(
        "    of which: "
        + ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in spent.items())
    )
    print(f"  sweep with {second.due} due:     {second.seconds * 1000:8.1f} ms")
    print(
        f"  server baseline: 1000 documents read one by one by _id {baseline[0]:.0f} ms, "
        f"updated by _id in one bulk write {baseline[1]:.0f} ms, moved in the due index "
        f"{baseline[2]:.0f} ms"
    )
    print(
        f"  sweep per due lead / server's due-index move per document: "
        f"{first.seconds / first.due / (baseline[2] / 1000 / 1000):.2f}"
    )
    print("  due query plan:", json.dumps(_plan_summary(plan)))


async def server_baseline(
    collection: AsyncCollection[dict[str, Any]], skip: int
) -> tuple[float, float, float]:
    """What the server takes, outside any sweep, for 1000 stored documents not due: to
    read them one by one by _id, to update a plain field of each in one bulk write,
    and to move each in the `due` index as a sweep's `postpone` does (later, so they
    stay not due). How its own cost per document grows with the data it holds."""
    ids = [d["_id"] async for d in collection.find({}, {"_id": 1}).skip(skip).limit(1000)]
    started = time.perf_counter()
    for id_ in ids:
        await collection.find_one({"_id": id_})
    read = time.perf_counter() - started
    started = time.perf_counter()
    await collection.bulk_write([UpdateOne({"_id": i}, {"$set": {"touched": True}}) for i in ids])
    plain = time.perf_counter() - started
    later = {"$set": {"next_emit_at": CLOCK.now() + timedelta(days=365)}}
    started = time.perf_counter()
    await collection.bulk_write([UpdateOne({"_id": i}, later) for i in ids])
    return 1000 * read, 1000 * plain, 1000 * (time.perf_counter() - started)


def _plan_summary(plan: dict[str, Any]) -> Any:
    """The winning plan's stages and index, and how much it examined."""
    planner = plan.get("queryPlanner", {})
    stats = plan.get("executionStats", {})
    return {
        "winningPlan": planner.get("winningPlan"),
        **{
            k: stats[k]
            for k in ("nReturned", "totalKeysExamined", "totalDocsExamined")
            if k in stats
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", default="50000,200000", help="lead counts, comma-separated")
    parser.add_argument("--due", type=int, default=5000, help="leads with something due")
    args = parser.parse_args()
    with embedded_servers() as servers:
        for leads in (int(n) for n in args.stored.split(",")):
            asyncio.run(bench(isolated_settings(servers, "sweep"), leads, args.due))


if __name__ == "__main__":
    main()
