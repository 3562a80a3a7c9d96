"""A connector that joins late: it builds a local table of every lead from
`leads.state`, then keeps it current from `leads.events`.

1. Read `leads.state` from the beginning up to the end offsets it had when we
   started: the latest state of each lead (compaction keeps only that one; before
   compaction ran, the highest version wins). A record without a value is a lead
   that is gone.
2. Follow `leads.events` from the oldest event Kafka still has, dropping every event
   at or below the version the table holds for its lead: each event carries the
   lead as it stood after it.

    python examples/lead_table.py --bootstrap 127.0.0.1:9092 [--prefix prod.]

Only aiokafka and the standard library: copy it into your connector.
"""

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Lead = dict[str, Any]


class LeadTable:
    """Each lead's latest known state, by lead id, with its version."""

    def __init__(self) -> None:
        self.leads: dict[str, Lead] = {}
        self.gone: set[str] = set()
        """Leads deleted for good: their older events, still on `leads.events`, are dropped."""

    def apply_state(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        lead_id = key.decode()
        if value is None:  # a tombstone: the lead is gone
            self.leads.pop(lead_id, None)
            self.gone.add(lead_id)
            return
        self._keep(lead_id, json.loads(value))

    def apply_event(self, value: bytes | None) -> None:
        if value is None:
            return
        event = json.loads(value)
        self._keep(event["lead_id"], {**event["lead"], "version": event["version"]})

    def _keep(self, lead_id: str, lead: Lead) -> None:
        if lead_id in self.gone:
            return
        held = self.leads.get(lead_id)
        if held is None or lead["version"] > held["version"]:
            self.leads[lead_id] = lead


async def load_state(bootstrap: str, topic: str, table: LeadTable) -> None:
    """Step 1: `leads.state` from its beginning to its end offsets as of now."""
    consumer = await _reading(bootstrap, topic)
    try:
        await _read_to_end(consumer, lambda r: table.apply_state(r.key, r.value))
    finally:
        await consumer.stop()


async def catch_up(bootstrap: str, topic: str, table: LeadTable) -> AIOKafkaConsumer:
    """Step 2, up to now: `leads.events` from the oldest event kept to its end offsets.
    Returns the consumer where it stopped: `follow` goes on from there."""
    consumer = await _reading(bootstrap, topic)
    try:
        await _read_to_end(consumer, lambda r: table.apply_event(r.value))
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def follow(consumer: AIOKafkaConsumer, table: LeadTable) -> None:
    """Step 2, from then on: every new event, as it comes."""
    while True:
        batches = await consumer.getmany(timeout_ms=1000)
        for records in batches.values():
            for record in records:
                table.apply_event(record.value)


async def _reading(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A consumer without a group on every partition of `topic`, from its beginning,
    reading only committed records."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()  # subscribed, so that it learns the topic's partitions
    try:
        async with asyncio.timeout(30):
            while not consumer.partitions_for_topic(topic):
                await asyncio.sleep(0.1)
    except BaseException:
        await consumer.stop()
        raise
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.unsubscribe()
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return consumer


async def _read_to_end(
    consumer: AIOKafkaConsumer, apply: Callable[[ConsumerRecord[bytes, bytes]], None]
) -> None:
    partitions = list(consumer.assignment())
    ends = await consumer.end_offsets(partitions)
    remaining = {tp for tp in partitions if ends[tp] > 0}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000)
        for records in batches.values():
            for record in records:
                apply(record)
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}


async def main(bootstrap: str, prefix: str) -> None:
    table = LeadTable()
    events = f"{prefix}leads.events"
    await load_state(bootstrap, f"{prefix}leads.state", table)
    consumer = await catch_up(bootstrap, events, table)
    try:
        print(f"{len(table.leads)} leads; following {events} (Ctrl-C stops)")
        await follow(consumer, table)
    finally:
        await consumer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--prefix", default="", help="LEADS_TOPIC_PREFIX of the deployment")
    args = parser.parse_args()
    asyncio.run(main(args.bootstrap, args.prefix))
