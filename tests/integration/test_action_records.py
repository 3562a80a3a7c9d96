"""What the read API says became of an action taken over HTTP, from the store: a
parked action reads as the `internal_error` it was answered, until it is replayed."""

import json
from typing import Any

from contracts.topics import Reason, Topic
from services.lifecycle.adapters.action_status import MongoActionRecords
from services.lifecycle.adapters.dead_letters import DeadLetters
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.actions import Actions, Submission
from services.lifecycle.service_layer.lead_service import LeadService
from tests import messages
from tests.messages import delivery


class Unpublished:
    async def publish(self, action: Any) -> None:
        raise AssertionError("a status read publishes nothing")


async def test_a_parked_action_reads_rejected_until_it_is_replayed(
    service: LeadService, store: MongoStore, clock: Clock
) -> None:
    action = messages.action("lead-parked", "favorite", message_id=f"{messages.PARTNER}:k-parked")
    parked = delivery(Topic.PARTNER_ACTIONS, action)
    await service.park(parked, RuntimeError("no rule foresaw this"))
    records = MongoActionRecords(store.database, clock)
    await records.remember(
        Submission(action["message_id"], action["partner_id"], "lead-parked", "fingerprint")
    )
    actions = Actions(records, Unpublished(), clock)

    status = await actions.status(action["partner_id"], action["message_id"])
    assert status is not None
    assert (status.status, status.reason) == ("rejected", Reason.INTERNAL_ERROR)
    assert status.detail is not None and "parked" in status.detail
    assert await actions.status("another-partner", action["message_id"]) is None

    letters = DeadLetters(store.database["dead_letters"])
    [(letter, _)] = await letters.parked()
    await letters.mark_replayed(letter.id, clock.now())
    replayed = await actions.status(action["partner_id"], action["message_id"])
    assert replayed is not None and replayed.status == "pending"
    assert json.loads(letter.value)["message_id"] == action["message_id"]
