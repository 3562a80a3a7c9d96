"""The lead service on a real MongoDB store, fed deliveries the way the consumer would
(`tests.messages.delivery`)."""

from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import Clock, SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.settings import Settings
from tests import messages
from tests.store_contract import SUBJECT_KEYS


@pytest.fixture
def clock() -> Clock:
    return SystemClock()


@pytest.fixture
def windows() -> Windows:
    return Windows()


@pytest.fixture
async def store(mongo: Any, settings: Settings, clock: Clock) -> MongoStore:
    store = MongoStore(
        mongo[settings.mongodb_database],
        clock,
        topic_prefix=settings.topic_prefix,
        subject_keys=SUBJECT_KEYS,
    )
    await store.ensure_indexes()
    return store


@pytest.fixture
async def service(store: MongoStore, clock: Clock, windows: Windows) -> LeadService:
    """The service, with the business profile of the partner the test leads are for."""
    service = LeadService(store, clock, windows)
    handled = await service.decide_and_commit_one(
        messages.delivery(Topic.PROFILES, messages.profile())
    )
    assert handled.outcome == "applied"
    return service
