"""The lead service on the in-memory store: conflicts and their retries, leads
remembered between batches, duplicates, held actions and parked messages, each
decided and committed in milliseconds."""

import json

import pytest

from contracts.topics import Topic
from services.lifecycle.adapters.memory import InMemoryStore
from services.lifecycle.service_layer.lead_service import MAX_CONFLICT_RETRIES, LeadService
from services.lifecycle.service_layer.ports import Change, OutboxRow, VersionConflict
from tests.messages import delivery
from tests.store_contract import (
    CLOCK,
    WINDOWS,
    Record,
    act,
    arrival,
    decided,
    handled,
    key_of,
    serving,
)


class RacedStore(InMemoryStore):
    """The in-memory store, where another replica commits a batch of its own just
    before each commit here, for as many batches as it is given."""

    def __init__(self) -> None:
        super().__init__(CLOCK)
        self._theirs: list[Record] = []
        self.attempts = 0

    def race(self, *records: Record) -> None:
        self._theirs, self.attempts = list(records), 0

    async def commit(self, change: Change) -> list[OutboxRow]:
        self.attempts += 1
        if self._theirs:
            await super().commit(await decided(self, self._theirs.pop(0)))
        return await super().commit(change)


@pytest.fixture
def store() -> RacedStore:
    return RacedStore()


@pytest.fixture
async def service(store: RacedStore) -> LeadService:
    return await serving(store)


def types(rows: list[OutboxRow]) -> list[str]:
    """What the rows publish, as their CloudEvents `type`s."""
    return [dict(row.headers)["ce_type"].decode() for row in rows]


async def test_a_new_lead_is_stored_and_announced_with_its_partner_told(
    service: LeadService, store: RacedStore
) -> None:
    committed = await handled(service, arrival("lead-new"))
    assert [h.outcome for h in committed.outcomes] == ["applied"]
    assert types(committed.rows) == ["lead.received", "lead.state", "notification.requested"]
    lead = await store.load("lead-new")
    assert lead is not None and (lead.version, lead.stage) == (1, "received")


async def test_duplicates_in_a_batch_and_across_batches_are_applied_once(
    service: LeadService, store: RacedStore
) -> None:
    await handled(service, arrival("lead-dup"))
    favorite = act("lead-dup", "favorite")
    first = await handled(service, favorite, favorite)
    again = await handled(service, favorite)

    outcomes = [h.outcome for h in [*first.outcomes, *again.outcomes]]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert types(await store.unsent_of(["lead-dup"])).count("lead.favorited") == 1
    lead = await store.load("lead-dup")
    assert lead is not None and lead.version == 2


# --- conflicts: decided again on fresh reads ---------------------------------------


async def test_a_lead_changed_by_another_replica_mid_batch_is_decided_again_as_stored(
    service: LeadService, store: RacedStore
) -> None:
    await handled(service, arrival("lead-raced"))
    store.race(act("lead-raced", "favorite"))
    committed = await handled(
        service, act("lead-raced", "accept"), act("lead-raced", "update", changes={"notes": "x"})
    )

    assert store.attempts == 2  # the first found the lead changed and wrote nothing
    assert [h.outcome for h in committed.outcomes] == ["applied", "applied"]
    lead = await store.load("lead-raced")
    assert lead is not None
    assert [entry.action for entry in lead.history] == ["receive", "favorite", "accept", "update"]


async def test_a_batch_that_keeps_conflicting_gives_up_and_commits_nothing(
    service: LeadService, store: RacedStore
) -> None:
    await handled(service, arrival("lead-busy"))
    toggles = [act("lead-busy", name) for name in ("favorite", "unfavorite")]
    store.race(*toggles * MAX_CONFLICT_RETRIES)
    accept = act("lead-busy", "accept")

    with pytest.raises(VersionConflict):
        await handled(service, accept)
    assert store.attempts == MAX_CONFLICT_RETRIES
    lead = await store.load("lead-busy")
    assert lead is not None and lead.stage == "received"
    assert not await store.is_processed(key_of(accept))


async def test_a_lead_remembered_here_but_changed_by_another_replica_is_decided_as_stored(
    service: LeadService, store: RacedStore
) -> None:
    """This replica takes the leads of its last batch from memory: one changed
    elsewhere since is forgotten and read again, whether the next message writes
    it or would be refused on the old view."""
    await handled(service, arrival("lead-w"), arrival("lead-r"))
    other_replica = LeadService(store, CLOCK, WINDOWS)
    await handled(other_replica, act("lead-w", "favorite"), act("lead-r", "accept"))

    written = await handled(service, act("lead-w", "accept"))
    won = await handled(service, act("lead-r", "won"))  # refused on the remembered view

    assert [h.outcome for h in [*written.outcomes, *won.outcomes]] == ["applied", "applied"]
    favorite, closed = await store.load("lead-w"), await store.load("lead-r")
    assert favorite is not None and (favorite.version, favorite.stage) == (3, "accepted")
    assert closed is not None and (closed.version, closed.outcome) == (3, "won")


# --- actions and their leads -------------------------------------------------------


async def test_an_action_whose_lead_arrives_while_it_is_decided_is_applied_on_the_retry(
    service: LeadService, store: RacedStore
) -> None:
    store.race(arrival("lead-a"))
    committed = await handled(service, act("lead-a", "accept"))

    assert store.attempts == 2 and [h.outcome for h in committed.outcomes] == ["applied"]
    lead = await store.load("lead-a")
    assert lead is not None and lead.stage == "accepted"
    assert await store.held_count() == 0


async def test_a_lead_arriving_while_an_action_for_it_is_held_gets_it_on_the_retry(
    service: LeadService, store: RacedStore
) -> None:
    store.race(act("lead-b", "accept"))
    await handled(service, arrival("lead-b"))

    assert store.attempts == 2
    lead = await store.load("lead-b")
    assert lead is not None and (lead.version, lead.stage) == (2, "accepted")
    assert await store.held_count() == 0


async def test_an_action_whose_lead_never_comes_is_refused_unknown_lead_once(
    service: LeadService, store: RacedStore
) -> None:
    accept = act("lead-gone", "accept")
    assert [h.outcome for h in (await handled(service, accept)).outcomes] == ["held"]
    [expired] = await store.held_past(CLOCK.now() + WINDOWS.response, limit=10)

    [answer] = await service.refuse_expired(expired)
    assert json.loads(answer.value or b"")["reason"] == "unknown_lead"
    assert await store.held_count() == 0
    assert [h.outcome for h in (await handled(service, accept)).outcomes] == ["duplicate"]


# --- parked messages ---------------------------------------------------------------


async def test_a_parked_message_is_answered_internal_error_and_kept_as_it_came_for_replay(
    service: LeadService,
) -> None:
    record = delivery(Topic.INBOUND, arrival("lead-p")[1])
    parked = await service.park(record, RuntimeError("no rule foresaw this"))

    assert [(h.outcome, h.reason) for h in parked.outcomes] == [("rejected", "internal_error")]
    answer, letter = parked.rows
    assert json.loads(answer.value or b"")["reason"] == "internal_error"
    assert (letter.topic, letter.value) == (Topic.DEAD_LETTER.value, record.value)
    assert [h.outcome for h in (await service.park(record, RuntimeError())).outcomes] == [
        "duplicate"
    ]
    # Replayed, it comes back at a new offset and is handled anew.
    replayed = await service.decide_and_commit([delivery(Topic.INBOUND, record.value)])
    assert [h.outcome for h in replayed.outcomes] == ["applied"]
