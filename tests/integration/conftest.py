"""The lead service on a real MongoDB store, fed deliveries the way the consumer would."""

import json
from itertools import count
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters import outbox
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Delivery
from services.lifecycle.service_layer.ports import OutboxRow
from services.lifecycle.settings import Settings
from tests import messages

_offsets = count()


def delivery(topic: Topic, value: dict[str, Any] | bytes, offset: int | None = None) -> Delivery:
    """A Kafka record as the consumer hands it over, each at an offset of its own."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Delivery(topic, topic.value, 0, next(_offsets) if offset is None else offset, raw)


async def outbox_rows(store: MongoStore, lead_id: str | None = None) -> list[OutboxRow]:
    """Every row the outbox holds (sent or not), of one lead or of all."""
    rows = [row async for d in store.database["outbox"].find() for row in outbox.rows_of(d)]
    return [row for row in rows if lead_id is None or row.lead_id == lead_id]


@pytest.fixture
def clock() -> Clock:
    return SystemClock()


@pytest.fixture
def windows() -> Windows:
    return Windows()


@pytest.fixture
async def store(mongo: Any, settings: Settings, clock: Clock) -> MongoStore:
    store = MongoStore(mongo[settings.mongodb_database], clock, topic_prefix=settings.topic_prefix)
    await store.ensure_indexes()
    return store


@pytest.fixture
async def service(store: MongoStore, clock: Clock, windows: Windows) -> LeadService:
    """The service, with the business profile of the partner the test leads are for."""
    service = LeadService(store, clock, windows)
    handled = await service.decide_and_commit_one(delivery(Topic.PROFILES, messages.profile()))
    assert handled.outcome == "applied"
    return service
