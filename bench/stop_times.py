"""How long a replica takes to stop on SIGTERM (as Kubernetes stops a pod), busy
and idle, on the embedded servers.

Two `leads serve` replicas share a consumer group under a steady stream of leads
and actions; one after the other is stopped and replaced, `--stops` times. Then an
idle replica is started and stopped `--idle` times. Prints the median and worst.

    python bench/stop_times.py --stops 10 --idle 5
"""

import argparse
import asyncio
import statistics
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.settings import Settings
from tests.e2e.drivers import ServiceProcess, Upstream, upstream_of
from tests.e2e.test_rolling_restart import replica, stream
from tests.servers import isolated_settings


async def busy_stops(settings: Settings, stops: int) -> list[float]:
    replicas = [replica(settings, "a"), replica(settings, "b")]
    for service in replicas:
        service.start()
    seconds: list[float] = []
    lead_ids = [f"stop-{uuid.uuid4().hex[:6]}-{n}" for n in range(100_000)]
    try:
        async with upstream_of(replicas[0]) as upstream:
            publishing = asyncio.create_task(stream(upstream, lead_ids))
            for n in range(stops):
                await until_flowing(upstream)
                code, took = await asyncio.to_thread(replicas[n % 2].terminate)
                assert code == 0, replicas[n % 2].lines[-10:]
                seconds.append(took)
                replicas[n % 2] = replica(settings, f"{n}")
                await asyncio.to_thread(replicas[n % 2].start)
            publishing.cancel()
    finally:
        for service in replicas:
            service.stop()
    return seconds


async def until_flowing(upstream: Upstream) -> None:
    """Wait until more events came out than before: the replicas are busy."""
    seen = len(upstream.outputs.values(Topic.EVENTS))
    await upstream.until(lambda o: len(o.values(Topic.EVENTS)) > seen + 30, timeout=60)


def idle_stops(settings: Settings, times: int) -> list[float]:
    seconds = []
    for n in range(times):
        service = ServiceProcess(replica(settings, f"idle{n}").settings)
        service.start()
        seconds.append(service.terminate()[1])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=10, help="busy stops")
    parser.add_argument("--idle", type=int, default=5, help="idle stops")
    args = parser.parse_args()
    with embedded_servers() as servers:
        settings = isolated_settings(servers, "stops").model_copy(
            update={"early_action_grace": timedelta(minutes=10)}
        )
        busy = asyncio.run(busy_stops(settings, args.stops))
        idle = idle_stops(isolated_settings(servers, "idle"), args.idle)
    for label, seconds in (("busy", busy), ("idle", idle)):
        print(
            f"{label} replica stop  median {statistics.median(seconds):.2f} s  "
            f"worst {max(seconds):.2f} s  ({len(seconds)} stops: "
            + ", ".join(f"{s:.2f}" for s in seconds)
            + ")"
        )


if __name__ == "__main__":
    main()
