"""The inbox on a real MongoDB: newest first or idle deals first, and pages that
neither skip nor repeat a lead. The inbox contract (tests/store_contract.py), and
what only MongoDB's times and indexes make worth asking."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.events import Stage
from contracts.topics import Topic
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.service_layer.inbox import Cursor, InboxFilter, InboxReader
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.settings import Settings
from tests import messages
from tests.messages import delivery
from tests.store_contract import InboxContract, every_page

NOW = datetime.now(UTC).replace(microsecond=0)


class TestMongoInbox(InboxContract):
    @pytest.fixture
    async def inbox(self, store: MongoStore) -> InboxReader:
        """On the integration conftest's store, with the inbox's indexes."""
        inbox = MongoInbox(store.database)
        await inbox.ensure_indexes()
        return inbox


async def received(service: LeadService, lead_id: str, received_at: datetime) -> str:
    lead = messages.inbound(lead_id, received_at=received_at.isoformat())
    assert (await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))).outcome == "applied"
    return lead_id


async def test_pages_cut_through_leads_received_at_the_same_instant(
    service: LeadService, mongo: Any, settings: Settings
) -> None:
    # Five leads share one instant, so the cursor must order them by id too.
    same = NOW - timedelta(hours=1)
    tied = [await received(service, f"lead-tied-{n}", same) for n in range(5)]
    newer = await received(service, "lead-newer", NOW - timedelta(minutes=5))
    older = await received(service, "lead-older", NOW - timedelta(hours=2))
    inbox = MongoInbox(mongo[settings.mongodb_database])

    newest_first = [newer, *sorted(tied, reverse=True), older]
    for limit in (1, 2, 3, 7):
        pages = await every_page(inbox, InboxFilter(), limit)
        assert [lead for page in pages for lead in page] == newest_first, f"limit {limit}"
        assert all(len(page) == limit for page in pages[:-1])


async def test_a_cursor_keeps_the_filter_it_was_made_with(
    service: LeadService, mongo: Any, settings: Settings
) -> None:
    ids = [await received(service, f"lead-{n}", NOW - timedelta(hours=n)) for n in range(1, 6)]
    accepted = messages.action(ids[1], "accept")
    assert (
        await service.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, accepted))
    ).outcome == "applied"
    inbox = MongoInbox(mongo[settings.mongodb_database])

    waiting = await every_page(inbox, InboxFilter(stage=Stage.RECEIVED), 2)
    assert [lead for page in waiting for lead in page] == [ids[0], *ids[2:]]
    soon = InboxFilter(stage=Stage.ACCEPTED, expiring_by=NOW + timedelta(days=30))
    assert await every_page(inbox, soon, 2) == [[]]  # an accepted lead no longer expires


async def test_a_cursor_past_the_last_lead_gives_an_empty_page(
    service: LeadService, mongo: Any, settings: Settings
) -> None:
    await received(service, "lead-only", NOW - timedelta(hours=1))
    inbox = MongoInbox(mongo[settings.mongodb_database])
    past = Cursor(NOW - timedelta(hours=1), "lead-only")
    page = await inbox.page(messages.PARTNER, InboxFilter(), past, 10)
    assert (page.leads, page.next_cursor) == ([], None)
