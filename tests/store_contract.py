"""What every lead store must do, whatever keeps it: the cases that `InMemoryStore`
(tests/unit/test_memory_store.py) and `MongoStore` (tests/integration/
test_mongo_store_contract.py) both pass, as eventsourcing's tests/persistence.py
does for its recorders. The inbox's reads of each store (`InMemoryInbox`:
tests/unit/test_inbox_store.py; `MongoInbox`: tests/integration/test_inbox_store.py)
pass the cases of `InboxContract`.

Every case speaks to the ports only, with changes decided by the real rules on
what the store holds.
"""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pytest

from contracts.events import Stage, Tab
from contracts.inbox import LeadSort
from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.lifecycle.adapters.outbox import SetAside
from services.lifecycle.domain.clock import FixedClock, SystemClock
from services.lifecycle.domain.deadlines import DeadlineChanges, deadlines_of
from services.lifecycle.domain.lead import Lead, Windows
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.batch import BatchPlan
from services.lifecycle.service_layer.decoding import decode
from services.lifecycle.service_layer.erasure import ErasureService, ErasureStore
from services.lifecycle.service_layer.inbox import InboxFilter, InboxReader
from services.lifecycle.service_layer.lead_purge import EndedLeads, LeadPurge
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Committed, Outcome, dedupe_key
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    ErasureRecord,
    HeldAction,
    LeadStore,
    LeadWrite,
    Marker,
    Outbox,
    OutboxRow,
    Refusal,
    Snapshot,
    VersionConflict,
    in_publishing_order,
)
from services.lifecycle.service_layer.state_republish import (
    REPUBLISHED,
    Progress,
    StateRepublisher,
    StoredLeads,
)
from tests import messages
from tests.messages import delivery

CLOCK = SystemClock()
SUBJECT_KEYS = SubjectKeys(b"contract-erasure-key")
"""The key every contract store hashes customers with (`LEADS_ERASURE_KEY`)."""
WINDOWS = Windows()
ANY_AGE = timedelta(0)
"""`older_than` for pending rows however recently committed."""
Record = tuple[Topic, dict[str, Any]]


class SetAsideRows(Protocol):
    async def set_aside_rows(self, ids: Sequence[str] | None = None) -> list[SetAside]: ...


class ContractStore(LeadStore, Outbox, StoredLeads, ErasureStore, EndedLeads, Protocol):
    """The ports, and what the cases read to see what a commit left."""

    async def load(self, lead_id: str) -> Lead | None: ...
    async def load_profile(self, partner_id: str) -> PartnerProfile | None: ...
    async def unsent_count(self) -> int: ...

    @property
    def outbox(self) -> SetAsideRows: ...


def arrival(lead_id: str) -> Record:
    return Topic.INBOUND, messages.inbound(lead_id=lead_id)


def act(lead_id: str, name: str, **fields: Any) -> Record:
    return Topic.PARTNER_ACTIONS, messages.action(lead_id, name, **fields)


def profile(**fields: Any) -> Record:
    return Topic.PROFILES, messages.profile(**fields)


def key_of(record: Record) -> str:
    """Where the message's marker is kept."""
    topic, value = record
    return dedupe_key(topic, value["message_id"])


async def serving(store: ContractStore) -> LeadService:
    """The service on `store`, which knows the test partner's profile."""
    service = LeadService(store, CLOCK, WINDOWS, subject_keys=SUBJECT_KEYS)
    await handled(service, profile(updated_at=CLOCK.now() - timedelta(days=1)))
    return service


async def handled(service: LeadService, *records: Record) -> Committed:
    return await service.decide_and_commit([delivery(topic, value) for topic, value in records])


async def decided(store: ContractStore, *records: Record) -> Change:
    """A batch decided on what the store holds now (blind to markers), not committed:
    the test commits it when it likes, as a slow or racing replica would."""
    lead_ids = sorted({value["lead_id"] for _, value in records if "lead_id" in value})
    view = Snapshot(
        frozenset(),
        await store.load_many(lead_ids),
        await store.load_profiles([messages.PARTNER]),
        await store.held_for(lead_ids),
    )
    plan = BatchPlan(view, CLOCK.now(), WINDOWS, early_action_grace=timedelta(minutes=10))
    for topic, value in records:
        record = delivery(topic, value)
        plan.take(record, decode(topic, record.value))
    return plan.change


@dataclass(frozen=True)
class Stored:
    """What the store holds of a lead, and how many rows are unsent in all."""

    lead: Lead | None
    held: dict[str, list[HeldAction]]
    unsent: list[OutboxRow]
    unsent_in_all: int


async def stored(store: ContractStore, lead_id: str) -> Stored:
    return Stored(
        await store.load(lead_id),
        await store.held_for([lead_id]),
        in_publishing_order(await store.unsent_of([lead_id])),
        await store.unsent_count(),
    )


def of_leads(rows: Sequence[OutboxRow]) -> list[tuple[str, tuple[int, int]]]:
    return [(row.lead_id, row.order) for row in rows]


class StaleReads:
    """The store, whose pages of leads are the ones read before some of them changed."""

    def __init__(self, store: ContractStore, page: list[Lead]) -> None:
        self._store, self._page = store, page

    async def leads_after(
        self, lead_id: str | None, partner_id: str | None, limit: int
    ) -> list[Lead]:
        return [] if lead_id else self._page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class StoreContract:
    """Subclassed as `Test…`, with a `store` fixture and the store's `write_error`."""

    write_error: ClassVar[type[Exception]]
    """What the store raises when a write that no check foresees fails."""

    # --- every assumption a batch was decided on is checked again ----------------------

    async def test_a_message_id_committed_twice_is_already_processed_and_writes_nothing(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-m"))
        accept = act("lead-m", "accept")
        await handled(service, accept)
        before = await stored(store, "lead-m")
        # The same id on another action, decided on the lead as it now is: only
        # the marker tells it was handled.
        reused = await decided(store, act("lead-m", "favorite", message_id=accept[1]["message_id"]))
        assert reused.leads["lead-m"].expected_version == 2

        with pytest.raises(AlreadyProcessed):
            await store.commit(reused)
        assert await stored(store, "lead-m") == before

    async def test_a_lead_changed_since_it_was_read_conflicts_and_nothing_is_written(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-v"))
        accept = await decided(store, act("lead-v", "accept"))
        await handled(service, act("lead-v", "favorite"))
        before = await stored(store, "lead-v")

        with pytest.raises(VersionConflict) as conflict:
            await store.commit(accept)
        assert not isinstance(conflict.value, AlreadyProcessed)
        assert await stored(store, "lead-v") == before
        assert await store.processed_among(list(accept.markers)) == frozenset()

    async def test_a_lead_created_twice_from_the_same_view_is_created_once(
        self, store: ContractStore
    ) -> None:
        await serving(store)
        first, second = [await decided(store, arrival("lead-twice")) for _ in range(2)]
        await store.commit(first)
        before = await stored(store, "lead-twice")

        with pytest.raises(VersionConflict):
            await store.commit(second)
        assert await stored(store, "lead-twice") == before
        assert await store.processed_among(list(second.markers)) == frozenset()

    async def test_two_leads_of_one_source_lead_from_the_same_view_are_never_both_stored(
        self, store: ContractStore
    ) -> None:
        await serving(store)
        sent = [
            (Topic.INBOUND, messages.inbound(lead_id=lead_id, source_lead_id="crm-1"))
            for lead_id in ("lead-src-1", "lead-src-2")
        ]
        first, second = [await decided(store, record) for record in sent]
        await store.commit(first)

        with pytest.raises(VersionConflict):
            await store.commit(second)
        assert await store.load("lead-src-2") is None
        [key] = {w.lead.source_key for w in first.leads.values()}
        assert key is not None
        assert await store.source_owners([key, "no-such-key"]) == {key: "lead-src-1"}

    async def test_open_leads_are_found_by_their_match_keys_and_archived_ones_are_not(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-look"), arrival("lead-other"))
        lead = await store.load("lead-look")
        assert lead is not None and lead.match_keys

        [found] = await store.lookalikes([lead.match_keys[0], "no-such-key"])
        assert found == lead.lookalike()
        await handled(service, act("lead-look", "decline"))
        assert await store.lookalikes(list(lead.match_keys)) == []

    @pytest.mark.parametrize("first", ["hold", "arrival"])
    async def test_an_action_held_and_its_lead_arriving_unaware_of_each_other_never_both_commit(
        self, store: ContractStore, first: str
    ) -> None:
        service = await serving(store)
        records = {"hold": act("lead-race", "accept"), "arrival": arrival("lead-race")}
        changes = {name: await decided(store, record) for name, record in records.items()}
        [second] = set(records) - {first}
        await store.commit(changes[first])

        with pytest.raises(VersionConflict):
            await store.commit(changes[second])
        # Decided again on what is stored now, the action is applied to its lead.
        await handled(service, records[second])
        lead = await store.load("lead-race")
        assert lead is not None and lead.stage == "accepted"
        assert await store.held_for(["lead-race"]) == {}

    async def test_a_held_action_is_released_only_while_it_is_still_held(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, act("lead-never", "accept"))
        [held] = (await store.held_for(["lead-never"]))["lead-never"]
        [refusal] = await service.refuse_expired(held)
        before = await stored(store, "lead-never")
        assert (before.held, before.unsent) == ({}, [refusal])

        with pytest.raises(VersionConflict):
            await service.refuse_expired(held)  # refused already
        settled = Marker(held.key, Outcome.REJECTED)
        for half in (Change(release=[held.key]), Change(settled={held.key: settled})):
            with pytest.raises(VersionConflict):
                await store.commit(half)
        assert await stored(store, "lead-never") == before

    @pytest.mark.parametrize("stored_before", [False, True])
    async def test_a_profile_replaced_since_it_was_read_conflicts(
        self, store: ContractStore, stored_before: bool
    ) -> None:
        if stored_before:
            await serving(store)
        now = CLOCK.now()
        first = await decided(store, profile(updated_at=now))
        later = await decided(store, profile(updated_at=now + timedelta(minutes=1)))
        await store.commit(first)

        with pytest.raises(VersionConflict):
            await store.commit(later)
        kept = await store.load_profile(messages.PARTNER)
        assert kept is not None and kept.updated_at == now

    async def test_a_write_no_check_foresaw_failing_undoes_the_whole_commit(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-half"))
        before = await stored(store, "lead-half")
        lead = before.lead
        assert lead is not None
        # The lead's expiry is stored already: adding it again fails after the
        # marker and the lead were written.
        [expiry] = [d for d in deadlines_of(lead, WINDOWS) if d.command == "expire"]
        half_done = Change(
            markers={"half-done": Marker("half-done", Outcome.APPLIED)},
            leads={"lead-half": LeadWrite(lead.model_copy(update={"version": 2}), 1)},
            deadlines=[DeadlineChanges("lead-half", add=(expiry,), fresh=True)],
        )

        with pytest.raises(self.write_error):
            await store.commit(half_done)
        assert await stored(store, "lead-half") == before
        assert await store.processed_among(["half-done"]) == frozenset()

    # --- the outbox --------------------------------------------------------------------

    async def test_a_leads_unsent_rows_are_read_back_as_committed_in_commit_order(
        self, store: ContractStore
    ) -> None:
        await serving(store)
        committed: list[OutboxRow] = []
        for record in (arrival("lead-o"), act("lead-o", "accept"), act("lead-o", "favorite")):
            committed += await store.commit(await decided(store, record))

        unsent = in_publishing_order(await store.unsent_of(["lead-o"]))
        assert unsent == committed
        # Each change: its event, then the lead's state; an arrival also tells the partner.
        orders = [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (3, 0), (3, 1)]
        assert of_leads(unsent) == [("lead-o", order) for order in orders]

    async def test_pending_rows_are_the_oldest_with_every_unsent_row_of_their_leads(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        for lead_id in ("lead-1", "lead-2", "lead-3"):
            await handled(service, arrival(lead_id))
        await handled(service, act("lead-1", "accept"))

        # Three rows for each arrival: the third lead's are not needed to reach four.
        assert of_leads(await store.pending(4, ANY_AGE)) == [
            ("lead-1", (1, 0)),
            ("lead-1", (1, 1)),
            ("lead-1", (1, 2)),
            ("lead-1", (2, 0)),
            ("lead-1", (2, 1)),
            ("lead-2", (1, 0)),
            ("lead-2", (1, 1)),
            ("lead-2", (1, 2)),
        ]
        assert await store.pending(100, older_than=timedelta(hours=1)) == []

    async def test_documents_the_relay_leaves_alone_are_not_read(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        first = await handled(service, arrival("lead-1"))
        for record in (arrival("lead-2"), act("lead-1", "accept"), arrival("lead-3")):
            await handled(service, record)

        def in_hand(document_id: Any, lead_ids: Sequence[str]) -> bool:
            return document_id == first.rows[0].id or "lead-2" in lead_ids

        # Not even as rows of a lead whose later rows are read.
        assert of_leads(await store.pending(100, ANY_AGE, in_hand)) == [
            ("lead-1", (2, 0)),
            ("lead-1", (2, 1)),
            ("lead-3", (1, 0)),
            ("lead-3", (1, 1)),
            ("lead-3", (1, 2)),
        ]

    async def test_rows_marked_sent_are_no_longer_pending_nor_unsent(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-s"))
        pending = await store.pending(100, ANY_AGE)
        assert await store.unsent_count() == len(pending) == 3

        await store.mark_sent([row.id for row in pending])
        assert await store.pending(100, ANY_AGE) == []
        assert await store.unsent_of(["lead-s"]) == []
        assert await store.unsent_count() == 0

    async def test_a_row_set_aside_twice_is_kept_once(self, store: ContractStore) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-big"))
        row, *_ = await store.pending(100, ANY_AGE)

        for _ in range(2):  # its document published again after a crash
            await store.set_aside([(row, "MessageSizeTooLargeError")])
        [aside] = await store.outbox.set_aside_rows()
        assert (aside.topic, aside.lead_id, aside.error, aside.size) == (
            row.topic,
            row.lead_id,
            "MessageSizeTooLargeError",
            len(row.value or b""),
        )

    # --- re-publishing states (`leads state republish`) ------------------------------

    async def test_every_leads_state_is_republished_after_its_own_rows(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        for lead_id in ("lead-a", "lead-b", "lead-c"):
            await handled(service, arrival(lead_id))
        await handled(service, act("lead-b", "accept"))
        await store.mark_sent([row.id for row in await store.pending(100, ANY_AGE)])

        done = await StateRepublisher(store, CLOCK, page_size=2).run()
        assert done == Progress(republished=3, skipped=0)
        rows = in_publishing_order(await store.pending(100, ANY_AGE))
        states = {row.lead_id: json.loads(row.value or b"")["version"] for row in rows}
        assert states == {"lead-a": 1, "lead-b": 2, "lead-c": 1}
        assert {row.topic.rsplit(".", 1)[-1] for row in rows} == {"state"}

    async def test_a_change_decided_before_a_republish_is_decided_again_after_it(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-r"))
        await store.mark_sent([row.id for row in await store.pending(100, ANY_AGE)])
        decided_before = await decided(store, act("lead-r", "accept"))
        await StateRepublisher(store, CLOCK).run()

        with pytest.raises(VersionConflict):
            await store.commit(decided_before)
        await handled(service, act("lead-r", "accept"))  # decided again, on what is stored
        rows = in_publishing_order(await store.unsent_of(["lead-r"]))
        # The re-published state goes out before the accept's event and state.
        assert of_leads(rows) == [
            ("lead-r", (1, REPUBLISHED)),
            ("lead-r", (2, 0)),
            ("lead-r", (2, 1)),
        ]

    async def test_a_stopped_run_resumes_after_the_last_page_it_did(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        for lead_id in ("lead-1", "lead-2", "lead-3"):
            await handled(service, arrival(lead_id))
        await store.record_republish_checkpoint("all", "lead-2")  # a run stopped there

        assert await StateRepublisher(store, CLOCK).run() == Progress(1, 0)
        assert await StateRepublisher(store, CLOCK).run() == Progress(3, 0)  # it ended
        assert (await StateRepublisher(store, CLOCK).run(restart=True)).republished == 3

    async def test_only_the_partners_leads_when_one_is_named(self, store: ContractStore) -> None:
        service = await serving(store)
        await handled(service, profile(partner_id="partner-2"))
        await handled(service, arrival("mine"), arrival_for("partner-2", "theirs"))
        await store.mark_sent([row.id for row in await store.pending(100, ANY_AGE)])

        await StateRepublisher(store, CLOCK).run(partner_id="partner-2")
        assert [row.lead_id for row in await store.pending(100, ANY_AGE)] == ["theirs"]

    async def test_a_lead_changed_since_its_page_was_read_is_left_to_its_change(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-x"), arrival("lead-y"))
        stale = await store.leads_after(None, None, 10)
        await handled(service, act("lead-x", "accept"))  # v2, and its state, meanwhile
        await store.mark_sent([row.id for row in await store.pending(100, ANY_AGE)])

        republishing = StateRepublisher(StaleReads(store, stale), CLOCK)
        assert await republishing.run() == Progress(republished=1, skipped=1)
        assert [row.lead_id for row in await store.pending(100, ANY_AGE)] == ["lead-y"]

    # --- a customer's erasure ----------------------------------------------------------

    async def test_an_erasure_reaches_the_customers_leads_at_every_partner_and_copies(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, profile(partner_id="partner-2"))
        await handled(
            service,
            arrival_for(messages.PARTNER, "at-1", customer=ERASED_CUSTOMER),
            arrival_for(
                "partner-2", "at-2", customer={**ERASED_CUSTOMER, "email": "ADA@A.example"}
            ),
            arrival("someone-else"),
        )
        early = messages.action(
            "not-yet", "accept", deal={**messages.DEAL, "notes": "ada@a.example"}
        )
        await handled(service, (Topic.PARTNER_ACTIONS, early))

        committed = await erased(store, "req-1", email="Ada@a.example")

        leads = await store.load_many(["at-1", "at-2", "someone-else"])
        assert [leads[i].customer.email for i in ("at-1", "at-2")] == [None, None]
        assert leads["someone-else"].customer.email is not None
        assert all(
            b"ada@a.example" not in (row.value or b"").lower()
            for row in await store.pending(100, ANY_AGE)
        )
        held_notes = (await store.held_for(["not-yet"]))["not-yet"][0].action["deal"]["notes"]
        assert "ada" not in held_notes.lower()
        answer = json.loads(answer_of(committed))
        assert (answer["leads"], answer["partners"]) == (2, 2)
        record = await store.erasure("req-1")
        assert record is not None and record.completed_at is not None
        assert SUBJECT_KEYS.of("ada@a.example", None) <= record.subject_keys

    async def test_an_erasure_asked_again_is_answered_alike_and_changes_nothing(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, arrival_for(messages.PARTNER, "at-1", customer=ERASED_CUSTOMER))
        first = await erased(store, "req-2", email="ada@a.example")
        version = (await store.versions_of(["at-1"]))["at-1"]

        again = await erased(store, "req-2", email="ada@a.example")

        assert answer_of(again) == answer_of(first)
        assert len(again.rows) == 1  # the answer alone
        assert (await store.versions_of(["at-1"]))["at-1"] == version

    async def test_a_customer_erased_is_refused_until_their_consent_comes_after_it(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await erased(store, "req-3", phone="+44 20 7946 0958")
        erased_at = (await store.erasure("req-3")).erased_at  # type: ignore[union-attr]
        customer = {**ERASED_CUSTOMER, "email": "new@a.example"}
        consent = await consent_given_after(erased_at)

        refused = await handled(service, arrival_for(messages.PARTNER, "again", customer=customer))
        taken = await handled(
            service, arrival_for(messages.PARTNER, "again-2", customer=customer, consent=consent)
        )

        assert refused.outcomes[0].reason == "erased_subject"
        assert taken.outcomes[0].outcome == "applied"

    # --- retention -------------------------------------------------------------------

    async def test_a_lead_past_its_retention_goes_with_a_tombstone_on_the_state_topic(
        self, store: ContractStore
    ) -> None:
        service, clock = await serving_from(store)
        source = {"source_lead_id": "crm-7"}
        gone = arrival_for(messages.PARTNER, "gone", **source)
        await handled(service, gone, arrival("kept"), arrival("open"))
        await handled(service, act("gone", "decline"))
        clock.advance(timedelta(days=2))
        await handled(service, act("kept", "decline"))
        clock.advance(timedelta(hours=1))
        kafka = RecordingPublisher()

        purged = await purge(store, kafka, clock, retention=timedelta(days=1))

        assert purged == 1 and await store.load("gone") is None
        assert {lead_id for lead_id in ("kept", "open") if await store.load(lead_id)} == {
            "kept",
            "open",
        }
        assert [(r.lead_id, r.value) for r in kafka.rows] == [("gone", None)]
        assert kafka.rows[0].topic.endswith(Topic.STATE.value)
        assert await purge(store, kafka, clock, retention=timedelta(days=1)) == 0
        again = await handled(service, arrival_for(messages.PARTNER, "again", **source))
        assert again.outcomes[0].outcome == "applied"  # its source lead id is free again

    async def test_a_lead_reopened_before_its_purge_commits_is_kept(
        self, store: ContractStore
    ) -> None:
        service, clock = await serving_from(store)
        await handled(service, arrival("back"), act("back", "decline"))
        clock.advance(timedelta(days=2))
        stale = await store.ended_before(clock.now(), 10)
        await handled(service, (Topic.INBOUND, messages.reopen("back")))

        with pytest.raises(VersionConflict):
            await store.commit(Change(purged=stale))
        assert (await store.load("back")) is not None

    async def test_an_erasure_stopped_between_pages_resumes_as_it_began(
        self, store: ContractStore
    ) -> None:
        service = await serving(store)
        await handled(service, profile(partner_id="partner-2"))
        for n, partner in enumerate((messages.PARTNER, "partner-2", messages.PARTNER)):
            await handled(service, arrival_for(partner, f"of-{n}", customer=ERASED_CUSTOMER))
        # Named by one lead only: the keys it began with must outlive that lead's erasure.
        record = delivery(Topic.PRIVACY_REQUESTS, erase_request("req-4", lead_id="of-0"))
        crashing = ErasureService(CrashingOnce(store, commits=1), CLOCK, SUBJECT_KEYS, page_size=1)

        with pytest.raises(ConnectionError):
            await crashing.decide_and_commit([record])
        committed = await ErasureService(store, CLOCK, SUBJECT_KEYS, page_size=1).decide_and_commit(
            [record]  # delivered again
        )

        answer = json.loads(answer_of(committed))
        assert (answer["leads"], answer["partners"]) == (3, 2)
        leads = await store.load_many(["of-0", "of-1", "of-2"])
        assert {lead.customer.email for lead in leads.values()} == {None}


class CrashingOnce:
    """The store, until its commit number `commits` + 1, which fails as a lost server would."""

    def __init__(self, store: ContractStore, commits: int) -> None:
        self._store, self._left = store, commits

    async def processed_among(self, keys: Sequence[str]) -> frozenset[str]:
        return await self._store.processed_among(keys)

    async def load_many(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        return await self._store.load_many(lead_ids)

    async def leads_of_subject(
        self, subject_keys: Sequence[str], received_by: datetime, limit: int
    ) -> list[Lead]:
        return await self._store.leads_of_subject(subject_keys, received_by, limit)

    async def erasure(self, request_id: str) -> ErasureRecord | None:
        return await self._store.erasure(request_id)

    async def commit(self, change: Change) -> list[OutboxRow]:
        if self._left == 0:
            raise ConnectionError("the server went away")
        self._left -= 1
        return await self._store.commit(change)


class RecordingPublisher:
    """Kafka, as far as a test needs: every row it was given."""

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []

    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        self.rows += rows
        return []


class AlwaysLeader:
    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


async def purge(
    store: ContractStore, kafka: RecordingPublisher, clock: FixedClock, retention: timedelta
) -> int:
    return await LeadPurge(store, store, kafka, AlwaysLeader(), clock, retention).run()


ERASED_CUSTOMER = {
    "company_name": "Analytical",
    "contact_name": "Ada Lovelace",
    "email": "ada@a.example",
    "phone": "+44 20 7946 0958",
    "country": "GB",
}


def answer_of(committed: Committed) -> bytes:
    """The erasure's answer (`privacy.erasure_completed`) among the rows it committed."""
    completed = b"privacy.erasure_completed"
    (answer,) = [r.value or b"" for r in committed.rows if dict(r.headers)["ce_type"] == completed]
    return answer


async def consent_given_after(erased_at: datetime) -> dict[str, Any]:
    """The customer's consent to be contacted, given once the clock has passed
    `erased_at` (and so not in the future either)."""
    while CLOCK.now() <= erased_at:
        await asyncio.sleep(0.001)
    return {"contact": True, "given_at": CLOCK.now().isoformat()}


def erase_request(request_id: str, **subject: str) -> dict[str, Any]:
    return {
        "message_id": messages.new_id("e"),
        "request_id": request_id,
        "requested_at": CLOCK.now().isoformat(),
        **subject,
    }


async def erased(store: ContractStore, request_id: str, **subject: str) -> Committed:
    """`request_id`'s erasure of the customer named by `subject`, handled on `store`."""
    request = erase_request(request_id, **subject)
    erasures = ErasureService(store, CLOCK, SUBJECT_KEYS, page_size=1)  # a page a lead
    return await erasures.decide_and_commit([delivery(Topic.PRIVACY_REQUESTS, request)])


# --- the inbox's reads ---------------------------------------------------------------

OTHER_PARTNER = "partner-2"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
IDLE_LONGEST = InboxFilter(sort=LeadSort.IDLE)


def arrival_for(partner_id: str, lead_id: str, **fields: Any) -> Record:
    return Topic.INBOUND, messages.inbound(lead_id=lead_id, partner_id=partner_id, **fields)


async def serving_from(
    store: ContractStore, start: datetime = START
) -> tuple[LeadService, FixedClock]:
    """The service on `store`, deciding by a clock that moves when told: leads arrive,
    are accepted and move when the test says. Both partners have profiles."""
    clock = FixedClock(start)
    service = LeadService(store, clock, WINDOWS)
    for partner_id in (messages.PARTNER, OTHER_PARTNER):
        await handled(service, profile(partner_id=partner_id, updated_at=START - timedelta(days=1)))
    return service, clock


async def every_page(
    inbox: InboxReader, where: InboxFilter, limit: int, partner_id: str = messages.PARTNER
) -> list[list[str]]:
    """The lead ids of every page, from the first until there is no next cursor."""
    pages, after = [], None
    while True:
        page = await inbox.page(partner_id, where, after, limit)
        pages.append([lead.lead_id for lead in page.leads])
        if (after := page.next_cursor) is None:
            return pages


class InboxContract:
    """Subclassed as `Test…`, with a `store` fixture and an `inbox` reading that store."""

    async def test_leads_are_listed_newest_first_and_pages_cut_through_ties_by_id(
        self, store: ContractStore, inbox: InboxReader
    ) -> None:
        service, clock = await serving_from(store, START - timedelta(hours=1))
        await handled(service, arrival("lead-older"))
        clock.advance(timedelta(minutes=30))
        # One batch: the three arrive at the same instant, so the cursor cuts by id.
        await handled(service, *(arrival(f"lead-tied-{n}") for n in range(3)))
        clock.advance(timedelta(minutes=30))
        await handled(service, arrival("lead-newer"), arrival_for(OTHER_PARTNER, "lead-theirs"))

        newest_first = ["lead-newer", "lead-tied-2", "lead-tied-1", "lead-tied-0", "lead-older"]
        for limit in (1, 2, 4, 5):
            pages = await every_page(inbox, InboxFilter(), limit)
            assert [lead for page in pages for lead in page] == newest_first, f"limit {limit}"
            assert all(len(page) == limit for page in pages[:-1])
        assert await every_page(inbox, InboxFilter(), 10, OTHER_PARTNER) == [["lead-theirs"]]

    async def test_accepted_deals_are_listed_idle_longest_first_and_pages_cut_through_ties(
        self, store: ContractStore, inbox: InboxReader
    ) -> None:
        service, clock = await serving_from(store)
        await handled(service, *(arrival(f"lead-{name}") for name in "abcdefg"))
        await handled(service, arrival_for(OTHER_PARTNER, "lead-theirs"))
        their_accept = act("lead-theirs", "accept", partner_id=OTHER_PARTNER)
        await handled(service, act("lead-c", "accept"), their_accept)
        clock.advance(timedelta(hours=1))
        # One batch: both deals are idle since the same instant, so the cursor cuts by id.
        await handled(service, act("lead-e", "accept"), act("lead-a", "accept"))
        clock.advance(timedelta(hours=1))
        await handled(service, act("lead-b", "accept"), act("lead-f", "accept"))
        clock.advance(timedelta(hours=1))
        note = act("lead-c", "log_activity", kind="note", summary="Called the customer")
        await handled(service, note, act("lead-f", "won"), act("lead-g", "decline"))

        # lead-c moved last; lead-d is still to answer, lead-f won, lead-g declined.
        idle_longest = ["lead-a", "lead-e", "lead-b", "lead-c"]
        for limit in (1, 2, 3, 4, 5):
            pages = await every_page(inbox, IDLE_LONGEST, limit)
            assert [lead for page in pages for lead in page] == idle_longest, f"limit {limit}"
            assert all(len(page) == limit for page in pages[:-1])
        assert await every_page(inbox, IDLE_LONGEST, 10, OTHER_PARTNER) == [["lead-theirs"]]

    async def test_the_idle_order_keeps_the_filters_and_lists_accepted_deals_only(
        self, store: ContractStore, inbox: InboxReader
    ) -> None:
        service, clock = await serving_from(store)
        qualified = {"lead_type": "sales_qualified", "contact_requested": True}
        await handled(
            service, arrival("lead-m"), arrival_for(messages.PARTNER, "lead-q", **qualified)
        )
        await handled(service, act("lead-q", "accept"), act("lead-q", "favorite"))
        clock.advance(timedelta(minutes=1))
        await handled(service, act("lead-m", "accept"))

        async def listed(**where: Any) -> list[list[str]]:
            return await every_page(inbox, InboxFilter(sort=LeadSort.IDLE, **where), 10)

        assert await listed(stage=Stage.ACCEPTED) == [["lead-q", "lead-m"]]
        assert await listed(tab=Tab.QUALIFIED) == [["lead-q"]]
        assert await listed(tab=Tab.FAVORITES, hot=True) == [["lead-q"]]
        assert await listed(tab=Tab.MARKETPLACE, hot=True) == [[]]
        assert await listed(stage=Stage.RECEIVED) == [[]]
        assert await listed(expiring_by=clock.now() + timedelta(days=30)) == [[]]

    async def test_a_lead_and_the_badge_counts_are_the_partners_own(
        self, store: ContractStore, inbox: InboxReader
    ) -> None:
        service = await serving(store)
        await handled(service, arrival("lead-1"), arrival("lead-2"), arrival("lead-3"))
        await handled(service, act("lead-1", "accept"), act("lead-1", "favorite"))
        await handled(service, act("lead-2", "decline"))

        counts = {key: n for key, n in (await inbox.counts(messages.PARTNER)).items() if n}
        assert counts == {
            (Tab.MARKETPLACE, Stage.RECEIVED): 1,
            (Tab.MARKETPLACE, Stage.ACCEPTED): 1,
            (Tab.MARKETPLACE, Stage.ARCHIVED): 1,
            (Tab.FAVORITES, Stage.ACCEPTED): 1,
        }
        assert not any((await inbox.counts(OTHER_PARTNER)).values())
        found = await inbox.lead(messages.PARTNER, "lead-1")
        assert found is not None and found.favorite
        assert await inbox.lead(OTHER_PARTNER, "lead-1") is None
