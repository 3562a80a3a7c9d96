"""Responsiveness feedback over a real MongoDB: which partners a run recomputes and publishes."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from contracts.performance import PerformanceUpdated
from contracts.topics import Topic
from services.lifecycle.adapters.inbox import MongoInbox
from services.lifecycle.adapters.lease import MongoLease
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.adapters.performance import MongoPerformanceRecords
from services.lifecycle.adapters.tallies import MongoPartnerTallies
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.performance_feedback import PerformancePublisher
from tests import messages
from tests.messages import delivery


class RecordingPublisher:
    def __init__(self) -> None:
        self.updates: list[PerformanceUpdated] = []

    async def publish(self, updates: Sequence[PerformanceUpdated]) -> None:
        self.updates += updates

    def take(self) -> list[str]:
        """Partner ids published since the last take."""
        partners = [update.partner_id for update in self.updates]
        self.updates = []
        return partners


async def handled(service: LeadService, topic: Topic, value: dict[str, Any]) -> None:
    assert (await service.decide_and_commit_one(delivery(topic, value))).outcome == "applied"


async def test_a_run_visits_every_changed_partner_however_many_batches(
    service: LeadService, store: MongoStore, clock: Clock
) -> None:
    partners = [f"partner-{n}" for n in range(5)]
    leads = {}
    for partner in partners:
        await handled(service, Topic.PROFILES, messages.profile(partner))
        lead = messages.inbound(partner_id=partner)
        await handled(service, Topic.INBOUND, lead)
        leads[partner] = lead["lead_id"]
    database = store.database
    records = MongoPerformanceRecords(database)
    lease = MongoLease(database, "feedback-test", "me", timedelta(minutes=1), clock)
    publisher = RecordingPublisher()
    feedback = PerformancePublisher(
        MongoPartnerTallies(database),
        records,
        MongoInbox(database),
        publisher,
        lease,
        clock,
        batch_size=2,
    )

    assert await feedback.run() == 5
    assert sorted(publisher.take()) == partners  # three batches of at most 2, each once
    assert await feedback.run() == 0  # nothing changed since

    accept = messages.action(leads["partner-3"], "accept", partner_id="partner-3")
    await handled(service, Topic.PARTNER_ACTIONS, accept)
    assert await feedback.run() == 1
    assert publisher.take() == ["partner-3"]
    served = await records.figures("partner-3")  # what the read API answers
    assert served is not None and served.computed_at is not None
    assert (served.overall.leads, served.overall.accepted) == (1, 1)
