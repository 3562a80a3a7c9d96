"""Pipeline benchmark on the embedded servers.

Pushes N leads, each followed by accept and won actions, through a running
`leads serve` process, and prints throughput, end-to-end latency percentiles
(publish of a message to arrival of the event it caused) and the service
process's CPU time per handled message.

    python bench/pipeline.py --leads 2000
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.settings import Settings
from tests import messages
from tests.conftest import isolated_settings
from tests.e2e.conftest import ServiceProcess, upstream_of


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def drive(settings: Settings, service: ServiceProcess, leads: int, window: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=2)
    consumer = AIOKafkaConsumer(
        Topic.EVENTS.named(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await producer.start()
    await consumer.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    expected = leads * 3
    progress = tqdm(total=expected, unit="msg", desc="handled", file=sys.stderr)
    done = asyncio.Event()
    pending: dict[str, list[dict[str, Any]]] = {}

    async def publish(topic: Topic, message: dict[str, Any]) -> None:
        sent_at[message["message_id"]] = time.perf_counter()
        await producer.send(
            topic.named(settings.topic_prefix),
            json.dumps(message).encode(),
            key=message["lead_id"].encode(),
        )

    async def read() -> None:
        async for record in consumer:
            event = json.loads(record.value)
            latencies.append(time.perf_counter() - sent_at[event["causation_id"]])
            progress.update(1)
            follow = pending.get(event["lead_id"])
            if follow:  # the next action of a lead goes out once the previous one is applied
                await publish(Topic.PARTNER_ACTIONS, follow.pop(0))
            if len(latencies) == expected:
                done.set()
                return

    reader = asyncio.create_task(read())
    cpu_before = sum(service_cpu(service))
    started = time.perf_counter()
    for n in range(leads):
        lead = messages.inbound(lead_id=f"bench-{uuid.uuid4().hex[:12]}")
        pending[lead["lead_id"]] = [
            messages.action(lead["lead_id"], "accept"),
            messages.action(lead["lead_id"], "won"),
        ]
        await publish(Topic.INBOUND, lead)
        while n - len(latencies) // 3 > window:  # keep at most `window` leads in flight
            await asyncio.sleep(0.005)
    await done.wait()
    elapsed = time.perf_counter() - started
    cpu = sum(service_cpu(service)) - cpu_before
    progress.close()
    reader.cancel()
    await producer.stop()
    await consumer.stop()
    print(f"messages handled     {expected} ({leads} leads x receive, accept, won)")
    print(f"wall time            {elapsed:.1f} s")
    print(f"throughput           {expected / elapsed:.0f} messages/s")
    print(
        "latency publish->event  p50 {:.1f} ms  p90 {:.1f} ms  p99 {:.1f} ms  max {:.1f} ms".format(
            *(1000 * percentile(latencies, p) for p in (50, 90, 99, 100))
        )
    )
    print(f"                     mean {1000 * statistics.mean(latencies):.1f} ms")
    print(f"service CPU time     {1000 * cpu / expected:.2f} ms per handled message")


def service_cpu(service: ServiceProcess) -> tuple[float, float]:
    assert service.process is not None
    times = psutil.Process(service.process.pid).cpu_times()
    return times.user, times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000, help="how many leads to push")
    parser.add_argument("--window", type=int, default=200, help="leads in flight at once")
    args = parser.parse_args()
    with embedded_servers() as servers:
        settings = isolated_settings(servers, "bench")
        service = ServiceProcess(settings)
        service.start()
        try:
            asyncio.run(with_profiles(settings, service, args.leads, args.window))
        finally:
            service.stop()


async def with_profiles(
    settings: Settings, service: ServiceProcess, leads: int, window: int
) -> None:
    async with upstream_of(service):  # the partner's profile first: leads need one
        await drive(settings, service, leads, window)


if __name__ == "__main__":
    main()
