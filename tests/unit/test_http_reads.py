"""The read API on the in-memory store, served in process: a declined lead says until
when its decline can be undone (by the windows bootstrap builds from settings), and
the accepted deals page idle longest first, each cursor keeping its order."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.lifecycle import bootstrap
from services.lifecycle.adapters.memory import InMemoryInbox, InMemoryStore
from services.lifecycle.adapters.tokens import TokenVerifier, issue
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.entrypoints.http import create_api
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.settings import Settings
from tests import messages
from tests.store_contract import (
    OTHER_PARTNER,
    START,
    Record,
    act,
    arrival,
    arrival_for,
    handled,
    profile,
)

SETTINGS = Settings(jwt_secret=SecretStr("a-test-secret-" + "0123456789" * 4), undo_window="P2D")
UNDO_WINDOW = timedelta(days=2)


@dataclass
class Served:
    client: httpx.AsyncClient
    service: LeadService
    clock: FixedClock

    async def handled(self, *records: Record) -> None:
        await handled(self.service, *records)

    async def get(
        self, path: str, partner_id: str = messages.PARTNER, **params: Any
    ) -> httpx.Response:
        token = issue(SETTINGS, partner_id, "referrals_admin", datetime.now(UTC))
        query = {name: value for name, value in params.items() if value is not None}
        return await self.client.get(
            path, params=query, headers={"Authorization": f"Bearer {token}"}
        )

    async def undo_until(self, lead_id: str) -> datetime | None:
        answer = await self.get(f"/v1/leads/{lead_id}")
        assert answer.status_code == 200, answer.text
        until = answer.json()["undo_until"]
        return datetime.fromisoformat(until) if until else None

    async def idle_longest(self, limit: int) -> list[str]:
        """Every page of `sort=idle`, followed by its cursors: the lead ids in order."""
        lead_ids: list[str] = []
        cursor = None
        while True:
            answer = await self.get("/v1/leads", sort="idle", limit=limit, cursor=cursor)
            assert answer.status_code == 200, answer.text
            lead_ids += [lead["lead_id"] for lead in answer.json()["items"]]
            if (cursor := answer.json()["next_cursor"]) is None:
                return lead_ids


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = FixedClock(START)
    store = InMemoryStore(clock)
    service = LeadService(store, clock, bootstrap.windows(SETTINGS))
    for partner_id in (messages.PARTNER, OTHER_PARTNER):
        await handled(service, profile(partner_id=partner_id, updated_at=START - timedelta(days=1)))

    async def ready() -> dict[str, bool]:
        return {}

    async def no_metrics() -> bytes:
        return b""

    inbox = bootstrap.inbox(SETTINGS, InMemoryInbox(store), clock)
    api = create_api(inbox, TokenVerifier(SETTINGS), store.load_profile, ready, no_metrics)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://leads.test") as client:
        yield Served(client, service, clock)


async def test_a_declined_lead_says_until_when_the_decline_can_be_undone(served: Served) -> None:
    await served.handled(arrival("lead-1"), arrival("lead-2"), arrival("lead-3"))
    served.clock.advance(timedelta(hours=1))
    await served.handled(
        act("lead-1", "decline"), act("lead-2", "decline"), act("lead-3", "accept")
    )
    until = START + timedelta(hours=1) + UNDO_WINDOW  # LEADS_UNDO_WINDOW, not the default

    assert await served.undo_until("lead-1") == until
    assert await served.undo_until("lead-3") is None  # accepted: no decline to take back
    served.clock.advance(UNDO_WINDOW)
    assert await served.undo_until("lead-1") == until  # to the last instant the rules allow
    await served.handled(act("lead-1", "undo_decline"))
    assert (await served.get("/v1/leads/lead-1")).json()["stage"] == "received"
    assert await served.undo_until("lead-1") is None

    served.clock.advance(timedelta(milliseconds=1))
    assert await served.undo_until("lead-2") is None  # the window has passed


async def test_accepted_deals_page_idle_longest_first_and_only_the_partners_own(
    served: Served,
) -> None:
    theirs = arrival_for(OTHER_PARTNER, "lead-theirs")
    await served.handled(*(arrival(f"lead-{name}") for name in "abcd"), theirs)
    for lead_id in ("lead-c", "lead-a", "lead-b"):
        await served.handled(act(lead_id, "accept"))
        served.clock.advance(timedelta(days=1))
    await served.handled(act("lead-theirs", "accept", partner_id=OTHER_PARTNER))
    await served.handled(act("lead-c", "log_activity", kind="call", summary="Pilot agreed"))

    for limit in (1, 2, 3):
        assert await served.idle_longest(limit) == ["lead-a", "lead-b", "lead-c"]
    newest = (await served.get("/v1/leads")).json()["items"]
    assert [lead["lead_id"] for lead in newest] == ["lead-d", "lead-c", "lead-b", "lead-a"]


async def test_a_cursor_continues_only_the_order_it_was_handed_out_in(served: Served) -> None:
    await served.handled(arrival("lead-1"), arrival("lead-2"))
    await served.handled(act("lead-1", "accept"), act("lead-2", "accept"))
    newest = (await served.get("/v1/leads", limit=1)).json()["next_cursor"]
    idle = (await served.get("/v1/leads", sort="idle", limit=1)).json()["next_cursor"]
    assert newest and idle

    for cursor, sort in ((newest, "idle"), (idle, "newest"), (idle, None)):
        answer = await served.get("/v1/leads", sort=sort, cursor=cursor)
        assert answer.status_code == 400, (sort, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    continued = await served.get("/v1/leads", sort="idle", cursor=idle)
    assert [lead["lead_id"] for lead in continued.json()["items"]] == ["lead-2"]
    theirs = await served.get("/v1/leads", OTHER_PARTNER, sort="idle", cursor=idle)
    assert theirs.status_code == 400  # sealed for this partner only


async def test_an_unknown_order_is_422_naming_the_parameter_not_the_value(
    served: Served,
) -> None:
    answer = await served.get("/v1/leads", sort="oldest")
    assert answer.status_code == 422
    assert [(e["location"], e["name"]) for e in answer.json()["errors"]] == [("query", "sort")]
    assert "oldest" not in answer.text
