"""Read API benchmark: what the inbox answers, in how long, for a partner with many leads.

Stores N leads of one partner (and as many of another, so that queries must
select) straight into MongoDB, shaped by the domain rules: a mix of lead types,
stages, hot and favorite leads. Then a running `leads serve` answers each
inbox request over real HTTP, one at a time, and the latencies are printed.

    python bench/read_api.py --leads 10000
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.actions import PARTNER_ACTION
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from services.dev_servers import embedded_servers
from services.lifecycle.adapters.mongo import connect, to_document
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Lead, Windows
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import ReadApi, ServiceProcess
from tests.servers import isolated_settings

LEAD_TYPES = ("customer_inquiry", "marketing_qualified", "sales_qualified")
CLOCK = SystemClock()


def lead(partner: str, n: int) -> Lead:
    """The n-th lead: received n minutes ago; every 3rd answered, some won, lost or declined."""
    now = CLOCK.now()
    message = InboundLead.model_validate(
        messages.inbound(
            lead_id=f"{partner}-{n:06d}",
            partner_id=partner,
            lead_type=LEAD_TYPES[n % 3],
            contact_requested=n % 7 == 0,
            received_at=(now - timedelta(minutes=n)).isoformat(),
        )
    )
    profile = PartnerProfile.model_validate(messages.profile(partner))
    current = rules.receive(None, message, now, Windows(), profile).lead
    for action in script(n):
        command = PARTNER_ACTION.validate_python(
            messages.action(current.lead_id, action, partner_id=partner)
        )
        current = rules.act(current, command, now).lead
    return current


def script(n: int) -> list[str]:
    return [
        [],
        ["accept"],
        ["accept", "won"],
        ["decline"],
        ["favorite"],
        ["accept", "lost"],
    ][n % 6]


async def store(settings: Settings, partners: list[str], leads: int) -> None:
    client = connect(settings.mongodb_uri)
    collection = client[settings.mongodb_database]["leads"]
    progress = tqdm(total=leads * len(partners), unit="lead", desc="storing", file=sys.stderr)
    for partner in partners:
        for start in range(0, leads, 500):
            batch = [to_document(lead(partner, n)) for n in range(start, min(leads, start + 500))]
            await collection.insert_many(batch)
            progress.update(len(batch))
    progress.close()
    await client.close()


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append(1000 * (time.perf_counter() - started))
    return times


async def measure(settings: Settings, partner: str, repeat: int) -> None:
    api = ReadApi(settings)

    async def get(path: str, **params: Any) -> dict[str, Any]:
        answer = await api.get(path, partner, **params)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    first = await get("/v1/leads", limit=25)
    deep_cursor = None
    for _ in range(100):  # 100 pages of 25 in: the cursor keeps deep pages cheap
        deep_cursor = (await get("/v1/leads", limit=25, cursor=deep_cursor))["next_cursor"]
    requests: dict[str, Callable[[], Awaitable[Any]]] = {
        "list, first page of 25": lambda: get("/v1/leads", limit=25),
        "list, page 101 of 25 (cursor)": lambda: get("/v1/leads", limit=25, cursor=deep_cursor),
        "list, 100 per page": lambda: get("/v1/leads", limit=100),
        "list tab=qualified stage=received": lambda: get(
            "/v1/leads", tab="qualified", stage="received"
        ),
        "list tab=favorites": lambda: get("/v1/leads", tab="favorites"),
        "list hot=true": lambda: get("/v1/leads", hot="true"),
        "list expiring_within_days=3": lambda: get("/v1/leads", expiring_within_days=3),
        "counts": lambda: get("/v1/leads/counts"),
        "one lead with history": lambda: get(f"/v1/leads/{first['items'][3]['lead_id']}"),
        "performance": lambda: get("/v1/performance"),
    }
    print(f"{'request':<36} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, call in requests.items():
        times = sorted(await timed(call, repeat))
        p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
        print(f"{name:<36} {statistics.median(times):8.1f} {p90:8.1f} {times[-1]:8.1f}")
    figures = await get("/v1/performance")
    print(f"performance over {figures['overall']['leads']} leads: {figures['overall']}")
    await api.close()


def on_stored_leads(leads: int, measure: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    """Stores `leads` leads for each of two partners on embedded servers, then runs
    `measure` against a `leads serve` process on them."""
    with embedded_servers() as servers:
        settings = isolated_settings(servers, "bench")
        asyncio.run(store(settings, [messages.PARTNER, "partner-2"], leads))
        service = ServiceProcess(settings)
        service.start()
        try:
            asyncio.run(measure(settings))
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10000, help="leads of the measured partner")
    parser.add_argument("--repeat", type=int, default=20, help="requests per measured query")
    args = parser.parse_args()
    on_stored_leads(args.leads, lambda settings: measure(settings, messages.PARTNER, args.repeat))


if __name__ == "__main__":
    main()
