"""The Leads page's answer times: what one view of the page asks the API for, and an
action's round trip (POST → its status `applied`), over real HTTP against a
`leads serve` on the embedded servers.

    python bench/leads_page.py --leads 1000 --repeat 20

Stores N leads of one partner (and as many of another) straight into MongoDB, as
bench/read_api.py does, then times, one request at a time:
- a page view: the counts and the first page of 20 leads of a tab, side by side,
  as the page loads them; and one lead's detail;
- an action: favorite and unfavorite in turn on one lead, from the POST until its
  status reads `applied` (polled every 5 ms), and the POST alone (the 202).
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_api import on_stored_leads, timed  # the same leads as the read API benchmark

from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import ReadApi

PAGE_SIZE = 20
POLL_S = 0.005


def percentiles(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90, ordered[-1]


class Partner:
    def __init__(self, api: ReadApi, partner: str) -> None:
        self.api = api
        self.partner = partner
        self.headers = {"Authorization": f"Bearer {api.token(partner)}"}

    async def get(self, path: str, **params: Any) -> Any:
        answer = await self.api.client.get(path, params=params, headers=self.headers)
        answer.raise_for_status()
        return answer.json()

    async def post_action(self, lead_id: str, action: str) -> str:
        answer = await self.api.client.post(
            f"/v1/leads/{lead_id}/actions",
            json={"action": action},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.headers["location"])

    async def applied(self, location: str) -> None:
        while True:
            status = await self.get(location)
            if status["status"] == "applied":
                return
            assert status["status"] == "pending", status
            await asyncio.sleep(POLL_S)


async def measure(settings: Settings, repeat: int) -> None:
    api = ReadApi(settings)
    await api.until("/healthz", lambda answer: answer.status_code == 200)
    me = Partner(api, messages.PARTNER)
    first = await me.get("/v1/leads", tab="marketplace", limit=PAGE_SIZE)
    lead_id = next(lead["lead_id"] for lead in first["items"] if lead["stage"] != "archived")

    async def page_view() -> None:
        await asyncio.gather(
            me.get("/v1/leads/counts"), me.get("/v1/leads", tab="marketplace", limit=PAGE_SIZE)
        )

    favorite = [False]

    async def round_trip() -> None:
        favorite[0] = not favorite[0]
        await me.applied(await me.post_action(lead_id, "favorite" if favorite[0] else "unfavorite"))

    post_times: list[float] = []

    async def timed_post() -> None:
        started = time.perf_counter()
        favorite[0] = not favorite[0]
        location = await me.post_action(lead_id, "favorite" if favorite[0] else "unfavorite")
        post_times.append(1000 * (time.perf_counter() - started))
        await me.applied(location)  # settled before the next one, but not timed

    figures = {
        f"page view: counts + {PAGE_SIZE} leads of a tab": await timed(page_view, repeat),
        f"list, first page of {PAGE_SIZE}": await timed(
            lambda: me.get("/v1/leads", tab="marketplace", limit=PAGE_SIZE), repeat
        ),
        "counts": await timed(lambda: me.get("/v1/leads/counts"), repeat),
        "one lead with history": await timed(lambda: me.get(f"/v1/leads/{lead_id}"), repeat),
        "action round trip (POST → applied)": await timed(round_trip, repeat),
    }
    for _ in range(repeat):
        await timed_post()
    figures["action POST alone (202)"] = post_times
    print(f"{'request':<42} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, times in figures.items():
        p50, p90, worst = percentiles(times)
        print(f"{name:<42} {p50:8.1f} {p90:8.1f} {worst:8.1f}")
    await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000, help="leads of the measured partner")
    parser.add_argument("--repeat", type=int, default=20, help="requests per measured figure")
    args = parser.parse_args()
    on_stored_leads(args.leads, lambda settings: measure(settings, args.repeat))


if __name__ == "__main__":
    main()
