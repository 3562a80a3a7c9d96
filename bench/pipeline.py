"""Pipeline benchmark on the embedded servers, all figures from one run.

1. The floor: a bare aiokafka consume -> JSON -> produce loop (bench/bare_loop.py)
   on the same broker, its CPU per message.
2. Under load: N leads, each received, accepted and won, pushed through a running
   `leads serve` as fast as it takes them (every lead published at once by default,
   each lead's next message as soon as the previous one's event is out; `--window`
   caps the leads in flight): throughput, publish -> event latency, the service's
   CPU per message and its ratio to the floor.
3. One at a time: accept -> `lead.accepted` latency, one accept in flight.
4. The store's own ceiling: the very documents the service writes for those
   leads (built by its own code, in batches of the size it committed), written
   with bulk writes in one transaction per batch and nothing else; our share of it.

    python bench/pipeline.py --leads 2000
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.adapters import outbox
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.kafka import ensure_topics
from services.lifecycle.adapters.mongo import MongoStore, connect
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Lead, Windows
from services.lifecycle.service_layer.batch import BatchPlan
from services.lifecycle.service_layer.decoding import decode
from services.lifecycle.service_layer.messages import Delivery
from services.lifecycle.service_layer.ports import Snapshot
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import ServiceProcess, upstream_of
from tests.servers import isolated_settings

Send = Callable[[Topic, dict[str, Any]], Any]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latencies(label: str, seconds: list[float]) -> str:
    ms = [1000 * s for s in seconds]
    return (
        f"{label:<34} p50 {percentile(ms, 50):7.1f} ms  p90 {percentile(ms, 90):7.1f} ms  "
        f"p99 {percentile(ms, 99):7.1f} ms  max {max(ms):7.1f} ms"
    )


# --- 1. the floor ----------------------------------------------------------------------


async def bare_loop(settings: Settings, count: int) -> dict[str, float]:
    source, target = f"{settings.topic_prefix}bare.in", f"{settings.topic_prefix}bare.out"
    await ensure_topics(settings.kafka_bootstrap_servers, [source, target], 3, 1)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for _ in range(count):
            lead = messages.inbound()
            await producer.send(source, json.dumps(lead).encode(), key=lead["lead_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    argv = [
        sys.executable,
        str(Path(__file__).with_name("bare_loop.py")),
        "--bootstrap",
        settings.kafka_bootstrap_servers,
        "--source",
        source,
        "--target",
        target,
        "--count",
        str(count),
    ]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


# --- 2 and 3. the service --------------------------------------------------------------


class Driver:
    """Publishes to the service and times each message until the event it caused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent_at: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.after_event: Callable[[dict[str, Any]], Awaitable[None]] = _nothing
        self.seen: set[bytes] = set()
        self.twice = 0
        """Events that arrived again under an id already seen (published twice)."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=1
        )
        self.consumer = AIOKafkaConsumer(
            Topic.EVENTS.named(settings.topic_prefix),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
            fetch_max_wait_ms=10,  # the embedded broker holds a fetch ~200 ms at the default
        )

    async def __aenter__(self) -> "Driver":
        await self.producer.start()
        await self.consumer.start()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._reader.cancel()
        await self.producer.stop()
        await self.consumer.stop()

    async def send(self, topic: Topic, message: dict[str, Any]) -> asyncio.Future[float]:
        """Publish; the future resolves to the seconds until the caused event arrived."""
        caused = asyncio.get_running_loop().create_future()
        self.waiting[message["message_id"]] = caused
        self.sent_at[message["message_id"]] = time.perf_counter()
        await self.producer.send(
            topic.named(self.settings.topic_prefix),
            json.dumps(message).encode(),
            key=message["lead_id"].encode(),
        )
        return caused

    async def _read(self) -> None:
        async for record in self.consumer:
            event_id = dict(record.headers)["ce_id"]
            self.twice += event_id in self.seen
            self.seen.add(event_id)
            event = json.loads(record.value)
            caused = self.waiting.pop(event["causation_id"], None)
            if caused is not None and not caused.done():
                caused.set_result(time.perf_counter() - self.sent_at.pop(event["causation_id"]))
                await self.after_event(event)


async def under_load(driver: Driver, leads: int, window: int) -> tuple[float, list[float]]:
    """Every lead received, accepted and won; returns (seconds, latencies)."""
    seconds: list[float] = []
    progress = tqdm(total=leads * 3, unit="msg", desc="handled", file=sys.stderr)
    follow: dict[str, list[dict[str, Any]]] = {}
    in_flight = asyncio.Semaphore(window)
    finished = asyncio.Event()

    def timed(future: asyncio.Future[float]) -> None:
        seconds.append(future.result())
        progress.update(1)
        if len(seconds) == leads * 3:
            finished.set()

    async def next_step(event: dict[str, Any]) -> None:
        steps = follow.get(event["lead_id"])
        if steps:
            (await driver.send(Topic.PARTNER_ACTIONS, steps.pop(0))).add_done_callback(timed)
        elif steps is not None:
            del follow[event["lead_id"]]
            in_flight.release()

    driver.after_event = next_step
    started = time.perf_counter()
    for _ in range(leads):
        await in_flight.acquire()
        lead = messages.inbound(lead_id=f"bench-{uuid.uuid4().hex[:12]}")
        follow[lead["lead_id"]] = [
            messages.action(lead["lead_id"], "accept"),
            messages.action(lead["lead_id"], "won"),
        ]
        (await driver.send(Topic.INBOUND, lead)).add_done_callback(timed)
    await finished.wait()
    progress.close()
    return time.perf_counter() - started, seconds


async def one_at_a_time(driver: Driver, samples: int) -> list[float]:
    driver.after_event = _nothing
    lead_ids = []
    for _ in range(samples):
        lead = messages.inbound(lead_id=f"single-{uuid.uuid4().hex[:12]}")
        lead_ids.append(lead["lead_id"])
        await driver.send(Topic.INBOUND, lead)
    await asyncio.sleep(0)
    seconds = []
    for lead_id in lead_ids:
        await asyncio.sleep(0.02)  # a modest rate: one accept at a time, a little apart
        seconds.append(
            await (await driver.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept")))
        )
    return seconds


async def _nothing(event: dict[str, Any]) -> None:
    return None


def committed_batches(settings: Settings) -> tuple[float, float]:
    """(messages, batches) the service committed, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{settings.http_port}/metrics", timeout=5).text
    handled = batches = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "leads_messages_handled_total":
                handled += sample.value
            if sample.name == "leads_message_handling_seconds_count":
                batches += sample.value
    return handled, batches


# --- 4. the store's ceiling ------------------------------------------------------------


async def store_ceiling(
    settings: Settings, leads: int, batch: int, samples: int
) -> tuple[float, list[float], float]:
    """Messages per second MongoDB takes for the service's own documents, bulk-written
    in one transaction per batch with no reads and no checks; then, on that volume,
    the seconds each of `samples` accepts' writes take one at a time; and the most
    documents a message writes (a phase's average)."""
    client = connect(settings.mongodb_uri)
    clock = SystemClock()
    store = MongoStore(client[f"ceiling_{uuid.uuid4().hex[:8]}"], clock, settings.topic_prefix)
    await store.ensure_indexes()  # the service's own indexes: every write keeps them up
    await MongoInbox(store.database).ensure_indexes()
    profile = PartnerProfile.model_validate(messages.profile())
    state: dict[str, Lead] = {}
    documents_per_message: list[float] = []

    async def written(topic: Topic, chunk: list[dict[str, Any]]) -> float:
        """Seconds the store took for what the service writes for these messages."""
        plan = BatchPlan(
            Snapshot(frozenset(), state, {profile.partner_id: profile}, {}),
            clock.now(),
            Windows(),
            settings.early_action_grace,
        )
        for offset, value in enumerate(chunk):
            raw = json.dumps(value).encode()
            plan.take(Delivery(topic, topic.value, 0, offset, raw), decode(topic, raw))
        state.update({w.lead.lead_id: w.lead for w in plan.change.leads.values()})
        rows = outbox.rows_for(plan.change, settings.topic_prefix, settings.event_source)
        documents = outbox.pack(rows, clock.now())
        writes = store.writes(plan.change, documents, clock.now())
        documents_per_message.append(sum(len(w.operations) for w in writes) / len(chunk))
        started = time.perf_counter()
        async with client.start_session() as session, await session.start_transaction():
            for write in writes:
                if write.operations:
                    await write.collection.bulk_write(write.operations, session=session)
        await store.mark_sent([d["_id"] for d in documents])
        return time.perf_counter() - started

    stream = [messages.inbound(lead_id=f"ceiling-{n}") for n in range(leads)]
    phases: list[tuple[Topic, list[dict[str, Any]]]] = [
        (Topic.INBOUND, stream),
        (Topic.PARTNER_ACTIONS, [messages.action(m["lead_id"], "accept") for m in stream]),
        (Topic.PARTNER_ACTIONS, [messages.action(m["lead_id"], "won") for m in stream]),
    ]
    singles = [messages.inbound(lead_id=f"ceiling-single-{n}") for n in range(samples)]
    try:
        seconds = 0.0
        for topic, values in phases:
            for chunk in chunks(values, batch):
                seconds += await written(topic, chunk)
        heaviest = max(documents_per_message)
        for lead in singles:
            await written(Topic.INBOUND, [lead])
        one_by_one = [
            await written(Topic.PARTNER_ACTIONS, [messages.action(lead["lead_id"], "accept")])
            for lead in singles
        ]
    finally:
        await client.drop_database(store.database.name)
        await client.close()
    return 3 * leads / seconds, one_by_one, heaviest


def chunks(values: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- the run ---------------------------------------------------------------------------


async def run(settings: Settings, service: ServiceProcess, args: argparse.Namespace) -> None:
    floor = await bare_loop(settings, 3 * args.leads)
    async with upstream_of(service), Driver(settings) as driver:
        cpu_before = service.cpu_seconds()
        elapsed, loaded = await under_load(driver, args.leads, args.window or args.leads)
        cpu = service.cpu_seconds() - cpu_before
        handled, batches = committed_batches(settings)
        single = await one_at_a_time(driver, args.samples)
        twice = driver.twice
    average_batch = handled / batches if batches else 1.0
    throughput = 3 * args.leads / elapsed
    ours, bare = 1000 * cpu / (3 * args.leads), 1000 * floor["cpu_s"] / floor["count"]
    show(
        ("messages handled", f"{3 * args.leads} ({args.leads} leads x receive, accept, won)"),
        ("bare aiokafka loop CPU", f"{bare:.3f} ms per message"),
        ("service CPU", f"{ours:.3f} ms per message ({ours / bare:.1f}x the bare loop)"),
        ("throughput", f"{throughput:.0f} messages/s in {elapsed:.1f} s"),
        ("batches committed", f"{batches:.0f}, {average_batch:.1f} messages each on average"),
        ("events published twice", f"{twice}"),
    )
    print(latencies(f"publish -> event, {args.window or args.leads} in flight", loaded))
    print(latencies("accept -> lead.accepted, one by one", single))
    print(f"{'':<34} mean {1000 * statistics.mean(single):.1f} ms", flush=True)

    # The service's part is measured: its process and data go, so the in-memory
    # store holds only what the ceiling writes (at 20,000 leads both together
    # can outgrow its cache).
    service.stop()
    client = connect(settings.mongodb_uri)
    await client.drop_database(settings.mongodb_database)
    await client.close()
    ceiling, store_single, per_message = await store_ceiling(
        settings, args.leads, max(1, round(average_batch)), args.samples
    )
    show(
        ("store ceiling, same documents", f"{ceiling:.0f} messages/s (bulk writes, no service)"),
        ("share of the store's ceiling", f"{100 * throughput / ceiling:.0f} %"),
        (
            "documents per transaction",
            f"{per_message:.1f} per message: {per_message * settings.batch_max:.0f} "
            f"in a full batch of {settings.batch_max} (MongoDB advises ~1,000)",
        ),
    )
    print(latencies("store alone, one accept's writes", store_single))


def show(*rows: tuple[str, str]) -> None:
    for label, value in rows:
        print(f"{label:<34} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000, help="how many leads to push")
    parser.add_argument(
        "--window", type=int, default=0, help="leads in flight at once (default: all)"
    )
    parser.add_argument("--samples", type=int, default=200, help="one-at-a-time accepts")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="a service setting for this run, e.g. batch_wait=PT0.02S (repeatable)",
    )
    args = parser.parse_args()
    with embedded_servers() as servers:
        # The tests' quick relay and grace put back to the service's defaults.
        defaults = Settings()
        settings = isolated_settings(servers, "bench").model_copy(
            update={
                name: getattr(defaults, name)
                for name in ("relay_poll_interval", "relay_lease", "early_action_grace")
            }
        )
        settings = Settings.model_validate({**settings.model_dump(), **dict(args.setting)})
        service = ServiceProcess(settings)
        service.start()
        try:
            asyncio.run(run(settings, service, args))
        finally:
            service.stop()


if __name__ == "__main__":
    main()
