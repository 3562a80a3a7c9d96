"""A burst of hostile records on one key, then a good lead on the same key, through a
`leads serve` process on the embedded servers: how many were answered, how long the
good lead behind them waited, and how much the service logged meanwhile.

    python bench/hostile.py --burst 500
"""

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.topics import Topic
from services.dev_servers import embedded_servers
from tests import messages
from tests.e2e.drivers import ServiceProcess, upstream_of
from tests.hostile import KINDS, burst
from tests.servers import isolated_settings


async def run(service: ServiceProcess, size: int) -> None:
    key = f"hostile-{uuid.uuid4().hex[:8]}"
    hostile = list(burst(size))
    async with upstream_of(service) as upstream:
        logged_before = sum(len(line) + 1 for line in service.lines)
        started = time.perf_counter()
        for value in hostile:
            await upstream.send(Topic.INBOUND, value, key=key)
        sent_good = time.perf_counter()
        await upstream.send(Topic.INBOUND, messages.inbound(lead_id=key))
        await upstream.until(
            lambda o: "lead.received" in o.event_types(key), timeout=300, what="the good lead"
        )
        received = time.perf_counter()
        await upstream.until(lambda o: len(o.values(Topic.REJECTED)) >= size, timeout=60)
        answered = len(
            {
                dict(r.headers)["ce_id"]
                for r in upstream.outputs.records
                if r.topic.endswith(Topic.REJECTED.value)
            }
        )
        published = len(upstream.outputs.values(Topic.REJECTED))
        logged = sum(len(line) + 1 for line in service.lines) - logged_before
    print(f"hostile records sent       {size} on one key ({len(KINDS)} kinds)")
    reasons = {r["reason"] for r in upstream.outputs.values(Topic.REJECTED)}
    print(f"answered on leads.rejected {answered} ({published} records; reasons {sorted(reasons)})")
    print(
        f"good lead behind them      received {1000 * (received - sent_good):.0f} ms after "
        f"it was sent, {received - started:.1f} s after the burst began"
    )
    print(f"service log meanwhile      {logged} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=500, help="hostile records to send")
    args = parser.parse_args()
    with embedded_servers() as servers:
        service = ServiceProcess(isolated_settings(servers, "hostile"))
        service.start()
        try:
            asyncio.run(run(service, args.burst))
        finally:
            service.stop()


if __name__ == "__main__":
    main()
