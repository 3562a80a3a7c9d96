"""Batches on the real store: several messages decided in memory and committed in one
transaction give exactly what handling them one by one gives; duplicates, second
writers and an action racing its lead's arrival are all settled right."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.ports import Change, OutboxRow
from tests import messages
from tests.integration.stored import outbox_rows
from tests.messages import delivery


def history(lead_id: str) -> list[tuple[Topic, dict[str, Any]]]:
    contacts = [{"name": "Max", "email": "max@contoso.example"}]
    return [
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept")),
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "favorite")),
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "update", changes={"notes": "ok"})),
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "add_contacts", contacts=contacts)),
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept")),  # refused: accepted
        (Topic.PARTNER_ACTIONS, messages.action(lead_id, "won")),
    ]


def published(rows: Sequence[OutboxRow]) -> list[tuple[str, str, Any]]:
    """What the rows say, less the moment they were decided."""
    out = []
    for row in rows:
        value = json.loads(row.value or b"")
        out.append(
            (
                dict(row.headers)["ce_id"].decode(),
                value.get("type", ""),
                value.get("version", value.get("reason")),
            )
        )
    return out


async def test_a_batch_of_one_leads_messages_equals_handling_them_one_by_one(
    service: LeadService, store: MongoStore
) -> None:
    lead = messages.inbound(lead_id="folded")
    steps = history("folded")
    await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))
    one_by_one = [await service.decide_and_commit_one(delivery(t, m)) for t, m in steps]
    rows_one_by_one = await outbox_rows(store, "folded")
    stored_one_by_one = await store.load("folded")

    # The very same messages again, on a fresh database, as one batch.
    await store.database.client.drop_database(store.database.name)
    await store.ensure_indexes()
    await service.decide_and_commit_one(delivery(Topic.PROFILES, messages.profile()))
    await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))
    batch = await service.decide_and_commit([delivery(t, m) for t, m in steps])
    rows_batched = await outbox_rows(store, "folded")
    stored_batched = await store.load("folded")

    assert batch.outcomes == one_by_one
    assert [h.outcome for h in batch.outcomes] == ["applied"] * 4 + ["rejected", "applied"]
    assert published(rows_batched) == published(rows_one_by_one)
    assert stored_batched is not None and stored_one_by_one is not None
    assert stored_batched.version == stored_one_by_one.version == 6
    moments = {"received_at", "respond_by", "hot_until", "answered_at", "idle_since"}
    assert stored_batched.snapshot().model_dump(exclude=moments) == (
        stored_one_by_one.snapshot().model_dump(exclude=moments)
    )


async def test_duplicates_inside_a_batch_and_across_batches_are_applied_once(
    service: LeadService, store: MongoStore
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="twice")))
    favorite = messages.action("twice", "favorite")
    first = await service.decide_and_commit(
        [delivery(Topic.PARTNER_ACTIONS, favorite), delivery(Topic.PARTNER_ACTIONS, favorite)]
    )
    again = await service.decide_and_commit([delivery(Topic.PARTNER_ACTIONS, favorite)])
    assert [h.outcome for h in first.outcomes] == ["applied", "duplicate"]
    assert [h.outcome for h in again.outcomes] == ["duplicate"]
    stored = await store.load("twice")
    assert stored is not None and stored.version == 2
    assert [t for _, t, _ in published(await outbox_rows(store, "twice"))].count(
        "lead.favorited"
    ) == 1


async def test_a_lead_refused_until_its_partner_has_a_profile_is_a_duplicate_when_redelivered(
    service: LeadService, store: MongoStore
) -> None:
    """A crash before the offset commit delivers the refused record again: it is
    answered once, and its partition goes on."""
    record = delivery(Topic.INBOUND, messages.inbound(lead_id="early", partner_id="no-profile"))
    first = await service.decide_and_commit([record])
    again = await asyncio.wait_for(service.decide_and_commit([record]), timeout=10)
    assert [h.outcome for h in first.outcomes] == ["rejected"]
    assert [h.outcome for h in again.outcomes] == ["duplicate"]
    refusals = [r for r in await outbox_rows(store) if r.topic.endswith(Topic.REJECTED.value)]
    assert len(refusals) == 1
    assert json.loads(refusals[0].value or b"")["reason"] == "partner_profile_missing"


class SecondWriter:
    """The store, with another writer changing the lead just before the batch commits."""

    def __init__(self, store: MongoStore, other: LeadService, lead_id: str) -> None:
        self._store = store
        self._other = other
        self._lead_id = lead_id
        self.commits = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def commit(self, change: Change) -> list[OutboxRow]:
        self.commits += 1
        if self.commits == 1:
            action = messages.action(self._lead_id, "favorite")
            await self._other.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, action))
        return await self._store.commit(change)


async def test_a_second_writer_mid_batch_makes_the_batch_decide_again_on_fresh_reads(
    service: LeadService, store: MongoStore, clock: Clock
) -> None:
    await service.decide_and_commit_one(delivery(Topic.INBOUND, messages.inbound(lead_id="raced")))
    racing = SecondWriter(store, service, "raced")
    batched = LeadService(racing, clock, Windows())
    result = await batched.decide_and_commit(
        [
            delivery(Topic.PARTNER_ACTIONS, messages.action("raced", "accept")),
            delivery(
                Topic.PARTNER_ACTIONS, messages.action("raced", "update", changes={"notes": "x"})
            ),
        ]
    )
    assert racing.commits == 2  # the first commit found the lead changed and wrote nothing
    assert [h.outcome for h in result.outcomes] == ["applied", "applied"]
    stored = await store.load("raced")
    assert stored is not None
    assert (stored.version, stored.favorite, stored.stage) == (4, True, "accepted")
    assert [e.action for e in stored.history] == ["receive", "favorite", "accept", "update"]


@pytest.mark.parametrize("attempt", range(5))
async def test_an_action_and_its_lead_committing_side_by_side_never_strand_the_action(
    service: LeadService, store: MongoStore, attempt: int
) -> None:
    lead = messages.inbound()
    accept = messages.action(lead["lead_id"], "accept")

    async def arrive() -> None:
        await service.decide_and_commit_one(delivery(Topic.INBOUND, lead))

    async def act() -> None:
        await service.decide_and_commit_one(delivery(Topic.PARTNER_ACTIONS, accept))

    await asyncio.gather(arrive(), act())
    stored = await store.load(lead["lead_id"])
    assert stored is not None and stored.stage == "accepted"  # applied, in either order
    assert await store.database["held_actions"].count_documents({}) == 0


async def test_a_lead_this_replica_remembers_but_another_replica_changed_is_decided_as_stored(
    service: LeadService, store: MongoStore, clock: Clock
) -> None:
    """Leads a replica decided lately are taken from its memory, not read again: a
    version changed elsewhere meanwhile must still be seen, whether the next
    decision writes the lead or only refuses."""
    for lead_id in ("written", "refused"):
        await service.decide_and_commit_one(
            delivery(Topic.INBOUND, messages.inbound(lead_id=lead_id))
        )
    other_replica = LeadService(store, clock, Windows())
    await other_replica.decide_and_commit_one(
        delivery(Topic.PARTNER_ACTIONS, messages.action("written", "favorite"))
    )
    await other_replica.decide_and_commit_one(
        delivery(Topic.PARTNER_ACTIONS, messages.action("refused", "accept"))
    )

    # Each on its own: one batch's conflict makes it read all of its leads again.
    accepted = await service.decide_and_commit_one(
        delivery(Topic.PARTNER_ACTIONS, messages.action("written", "accept"))
    )
    # Refused, were the lead taken as this replica last saw it (not accepted yet).
    won = await service.decide_and_commit_one(
        delivery(Topic.PARTNER_ACTIONS, messages.action("refused", "won"))
    )

    assert (accepted.outcome, won.outcome) == ("applied", "applied")
    written, closed = await store.load("written"), await store.load("refused")
    assert written is not None and closed is not None
    assert (written.version, written.favorite, written.stage) == (3, True, "accepted")
    assert (closed.version, closed.outcome) == (3, "won")
