"""MongoDB through PyMongo's async API: leads, dedupe markers, the outbox, deadlines,
held actions, partner tallies and dead letters.

One transaction per batch holds everything the batch decided, written with a
few bulk operations; every assumption the batch was decided on is checked again
inside it (lead versions, markers, held actions), so a crash or a concurrent
writer anywhere leaves all or nothing, and a stale decision commits nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pymongo
from pymongo import (
    ASCENDING,
    AsyncMongoClient,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReadPreference,
    ReplaceOne,
    UpdateOne,
)
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, CollectionInvalid, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from contracts.events import Stage
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters import dead_letters, deadlines, erasures, held, outbox, tallies
from services.lifecycle.adapters.outbox import MongoOutbox
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.duplicates import PER_KEY, LookAlike
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.in_flight import InFlightOutbox
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    DeadLetter,
    ErasureRecord,
    HeldAction,
    Marker,
    OutboxRow,
    ProfileUpdate,
    SkipDocument,
    VersionConflict,
    skip_none,
)

Document = dict[str, Any]

# Times the sweeps and inbox queries filter or sort on are stored as BSON dates.
_DATE_FIELDS = ("received_at", "respond_by", "hot_until", "answered_at", "idle_since")
_DUPLICATE_KEY = 11000


COLLECTIONS = (
    "leads",
    "source_keys",
    "processed_messages",
    "outbox",
    "outbox_set_aside",
    "deadlines",
    "partner_profiles",
    "held_actions",
    "partner_tallies",
    "partner_performance",
    "dead_letters",
    "http_actions",
    "leases",
    "erasures",
)
"""Created at start-up: a transaction that had to create one would race its twin on
a fresh database, and a cross-shard one cannot create it at all."""
_NAMESPACE_EXISTS = 48
_TRANSACTION: dict[str, Any] = {
    "read_concern": ReadConcern("snapshot"),
    "write_concern": WriteConcern("majority"),
    "read_preference": ReadPreference.PRIMARY,
}
"""Whatever the URI says: a transaction reads the primary's snapshot and is
acknowledged once a majority has it, so no fail-over rolls back a committed batch."""


def connect(uri: str, timeout: timedelta | None = None) -> AsyncMongoClient[Document]:
    """A client whose every call is bounded by `timeout` (pymongo's timeoutMS, a
    client-side bound: a server that hangs fails the call instead of holding it)."""
    bound: dict[str, Any] = {"timeoutMS": int(timeout.total_seconds() * 1000)} if timeout else {}
    return AsyncMongoClient(uri, tz_aware=True, appname="leads-service", **bound)


def pinned(database: AsyncDatabase[Document]) -> AsyncDatabase[Document]:
    """The service's database, read on the primary and written with w: majority,
    whatever the URI says (a secondary's read is stale; w: 1 can be rolled back)."""
    return database.with_options(
        read_preference=ReadPreference.PRIMARY, write_concern=WriteConcern("majority")
    )


async def ensure_collections(database: AsyncDatabase[Document]) -> None:
    for name in COLLECTIONS:
        try:
            await database.create_collection(name)
        except CollectionInvalid:
            pass  # exists (another replica made it first)
        except OperationFailure as error:
            if error.code != _NAMESPACE_EXISTS:
                raise


async def ensure_indexes(
    collection: AsyncCollection[Document], models: Sequence[IndexModel]
) -> None:
    """Create the indexes; a TTL index whose expiry changed is changed in place
    (`collMod`): created again with new options, MongoDB refuses it."""
    existing = await collection.index_information()
    for model in models:
        wanted = model.document
        ttl = wanted.get("expireAfterSeconds")
        found = existing.get(wanted["name"])
        if ttl is not None and found is not None and found.get("expireAfterSeconds") != ttl:
            await collection.database.command(
                "collMod",
                collection.name,
                index={"name": wanted["name"], "expireAfterSeconds": ttl},
            )
    await collection.create_indexes(list(models))


def to_document(lead: Lead, keys: SubjectKeys | None = None) -> Document:
    """`keys`: the customer's keyed hashes are kept with it, for their erasure."""
    document = lead.model_dump(mode="json")
    document.update({name: getattr(lead, name) for name in _DATE_FIELDS})
    document["_id"] = lead.lead_id
    document["tab"] = lead.tab.value
    if keys is not None:
        document["subject_keys"] = sorted(keys.of_lead(lead))
    document["ended_at"] = lead.ended_at if lead.stage is Stage.ARCHIVED else None
    return document


def from_document(document: Document) -> Lead:
    return Lead.model_validate(document)


@dataclass(frozen=True)
class Write:
    """One bulk write of a batch's transaction, and what it must find to hold."""

    collection: AsyncCollection[Document]
    operations: list[Any]
    matched: int | None = None
    """Guarded updates, each of which must match a document (else the view was stale)."""
    deleted: int | None = None
    """Deletes, each of which must find its document."""
    duplicate: type[VersionConflict] | None = None
    """What a duplicate key means here: someone committed the same thing meanwhile."""

    async def run(self, session: AsyncClientSession | None = None) -> None:
        if not self.operations:
            return
        try:
            result = await self.collection.bulk_write(self.operations, session=session)
        except BulkWriteError as error:
            if self.duplicate is not None and _duplicate(error):
                raise self.duplicate(f"{self.collection.name}: written meanwhile") from None
            raise
        stale = (self.matched is not None and result.matched_count != self.matched) or (
            self.deleted is not None and result.deleted_count != self.deleted
        )
        if stale:
            raise VersionConflict(f"{self.collection.name}: changed meanwhile")


class MongoStore:
    """The `LeadStore` port, plus the outbox the relay drains.

    Arguments:
        database: the service's database (pinned to the primary and w: majority here).
        clock: the service's clock.
        topic_prefix: the deployment's prefix of the topics rows are published to.
        event_source: the CloudEvents `ce_source` of what is published.
        outbox_retention: how long sent outbox documents are kept (a TTL index).
        in_flight: documents this process has in hand, held from before each commit.
        timeout: the bound of one batch's transaction, its retries included.
        subject_keys: hashes customers' e-mails and phones where their data is kept,
            so that an erasure finds it (none: nothing is found).
    """

    def __init__(
        self,
        database: AsyncDatabase[Document],
        clock: Clock,
        topic_prefix: str = "",
        event_source: str = "leads-service",
        outbox_retention: timedelta = timedelta(days=7),
        in_flight: InFlightOutbox | None = None,
        timeout: timedelta = timedelta(seconds=30),
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        self._db = pinned(database)
        self._keys = subject_keys
        self._erasures = erasures.Erasures(self._db, subject_keys or SubjectKeys(b""))
        self._client = database.client
        self._leads = self._db["leads"]
        self._sources = self._db["source_keys"]
        self._processed = self._db["processed_messages"]
        self._outbox = self._db["outbox"]
        self._deadlines = self._db["deadlines"]
        self._profiles = self._db["partner_profiles"]
        self._held = self._db["held_actions"]
        self._tallies = self._db["partner_tallies"]
        self._dead_letters = self._db["dead_letters"]
        self.outbox = MongoOutbox(self._outbox, clock.now, self._db["outbox_set_aside"])
        self._timeout_s = timeout.total_seconds()
        self._clock = clock
        self._prefix = topic_prefix
        self._source = event_source
        self._retention = outbox_retention
        self._in_flight = in_flight or InFlightOutbox()

    @property
    def database(self) -> AsyncDatabase[Document]:
        return self._db

    async def ensure_indexes(self) -> None:
        """Idempotent; run at start-up, with the collections. The lead id is `_id`,
        unique by nature; the inbox's indexes on leads are the read side's
        (`adapters.inbox`)."""
        await ensure_collections(self._db)
        await ensure_indexes(self._leads, [LOOKALIKES, ENDED])
        await ensure_indexes(self._deadlines, deadlines.INDEXES)
        await ensure_indexes(self._held, held.INDEXES)
        await ensure_indexes(self._tallies, tallies.INDEXES)
        await ensure_indexes(self._outbox, outbox.indexes(self._retention))
        await ensure_indexes(self._dead_letters, dead_letters.INDEXES)
        await self._erasures.ensure_indexes()

    # --- reads a batch is decided on ---------------------------------------------------

    async def processed_among(self, keys: Sequence[str]) -> frozenset[str]:
        if not keys:
            return frozenset()
        found = self._processed.find({"_id": {"$in": list(keys)}}, {"_id": 1})
        return frozenset([document["_id"] async for document in found])

    async def is_processed(self, dedupe_key: str) -> bool:
        return bool(await self.processed_among([dedupe_key]))

    async def load(self, lead_id: str) -> Lead | None:
        return (await self.load_many([lead_id])).get(lead_id)

    async def load_many(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        if not lead_ids:
            return {}
        found = self._leads.find({"_id": {"$in": list(lead_ids)}})
        return {document["_id"]: from_document(document) async for document in found}

    async def leads_after(
        self, lead_id: str | None, partner_id: str | None, limit: int
    ) -> list[Lead]:
        """By lead id, on the `_id` index (a partner's: filtered as they come)."""
        query: Document = {"_id": {"$gt": lead_id}} if lead_id is not None else {}
        if partner_id is not None:
            query["partner_id"] = partner_id
        found = self._leads.find(query).sort("_id", ASCENDING).limit(limit)
        return [from_document(document) async for document in found]

    async def republish_checkpoint(self, run: str) -> str | None:
        found = await self._db["state_republish"].find_one({"_id": run})
        return found["after"] if found else None

    async def record_republish_checkpoint(self, run: str, lead_id: str | None) -> None:
        checkpoints = self._db["state_republish"]
        if lead_id is None:
            await checkpoints.delete_one({"_id": run})
        else:
            await checkpoints.replace_one({"_id": run}, {"after": lead_id}, upsert=True)

    async def versions_of(self, lead_ids: Sequence[str]) -> dict[str, int]:
        if not lead_ids:
            return {}
        found = self._leads.find({"_id": {"$in": list(lead_ids)}}, {"version": 1})
        return {document["_id"]: document["version"] async for document in found}

    async def load_profile(self, partner_id: str) -> PartnerProfile | None:
        return (await self.load_profiles([partner_id])).get(partner_id)

    async def load_profiles(self, partner_ids: Sequence[str]) -> dict[str, PartnerProfile]:
        if not partner_ids:
            return {}
        found = self._profiles.find({"_id": {"$in": list(partner_ids)}})
        return {d["_id"]: PartnerProfile.model_validate(d) async for d in found}

    async def held_for(self, lead_ids: Sequence[str]) -> dict[str, list[HeldAction]]:
        return await held.of_leads(self._held, lead_ids)

    async def lookalikes(self, match_keys: Sequence[str]) -> list[LookAlike]:
        if not match_keys:
            return []
        query = {"match_keys": {"$in": list(match_keys)}}
        found = self._leads.find(query, _LOOKALIKE_FIELDS).sort(_NEWEST)
        return [_lookalike(d) async for d in found.limit(PER_KEY * len(match_keys))]

    async def source_owners(self, source_keys: Sequence[str]) -> dict[str, str]:
        if not source_keys:
            return {}
        found = self._sources.find({"_id": {"$in": list(source_keys)}})
        return {document["_id"]: document["lead_id"] async for document in found}

    async def erased_among(self, subject_keys: Sequence[str]) -> dict[str, datetime]:
        return await self._erasures.erased_among(subject_keys)

    async def leads_of_subject(
        self, subject_keys: Sequence[str], received_by: datetime, limit: int
    ) -> list[Lead]:
        """Leads of the customer with these keys received by then, by lead id."""
        query = {
            "subject_keys": {"$in": sorted(subject_keys)},
            "received_at": {"$lte": received_by},
        }
        found = self._leads.find(query).sort("_id", ASCENDING).limit(limit)
        return [from_document(document) async for document in found]

    async def backfill_subject_keys(self, page_size: int = 500) -> int:
        """Keys (and the end time) for leads stored before leads kept them (`leads
        privacy backfill`), so that an erasure, and their retention, finds them;
        returns how many leads got them."""
        assert self._keys is not None, "the store was built without subject keys"
        kept = ("subject_keys", "ended_at")
        done = 0
        while True:
            legacy = self._leads.find({"subject_keys": {"$exists": False}})
            page = [from_document(d) async for d in legacy.limit(page_size)]
            if not page:
                return done
            documents = [to_document(lead, self._keys) for lead in page]
            # Guarded by version: a lead rewritten meanwhile has its keys already.
            result = await self._leads.bulk_write(
                [
                    UpdateOne(
                        {"_id": d["_id"], "version": d["version"]},
                        {"$set": {name: d[name] for name in kept}},
                    )
                    for d in documents
                ],
                ordered=False,
            )
            done += result.modified_count

    async def ended_before(self, cutoff: datetime, limit: int) -> list[Lead]:
        """Archived leads that ended by `cutoff`, those that ended first first."""
        query = {"stage": Stage.ARCHIVED.value, "ended_at": {"$lte": cutoff}}
        found = self._leads.find(query).sort("ended_at", ASCENDING).limit(limit)
        return [from_document(document) async for document in found]

    async def erasure(self, request_id: str) -> ErasureRecord | None:
        return await self._erasures.record(request_id)

    async def held_past(self, now: datetime, limit: int) -> list[HeldAction]:
        """Actions whose lead did not come within their grace, oldest first."""
        return await held.expired(self._held, now, limit)

    async def held_count(self) -> int:
        return await held.count(self._held)

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]:
        return await self.outbox.unsent_of(lead_ids)

    # --- the batch's transaction -------------------------------------------------------

    async def commit(self, change: Change) -> list[OutboxRow]:
        now = self._clock.now()
        documents = outbox.pack(outbox.rows_for(change, self._prefix, self._source), now)
        steps = self.writes(change, documents, now)
        # Held from before the transaction: its commit may land on the store well
        # before its reply comes back, and the relay must not send them meanwhile.
        # Bounded as a whole, retries included: a hung server fails the batch, which
        # is retried (a commit that landed meanwhile is found by its markers).
        with (
            self._in_flight.holding({d["_id"]: d["lead_ids"] for d in documents}),
            pymongo.timeout(self._timeout_s),
        ):
            async with self._client.start_session() as session:
                # A transient error retries the whole callback: every check runs again.
                await session.with_transaction(
                    lambda s: self._write(s, change, steps, documents), **_TRANSACTION
                )
        return [row for document in documents for row in outbox.rows_of(document)]

    def writes(self, change: Change, documents: list[Document], now: datetime) -> list[Write]:
        """The bulk writes of a batch, in the order they run, each with its check."""
        markers: list[Any] = [InsertOne(_marker(m, now)) for m in change.markers.values()]
        markers += [
            UpdateOne({"_id": m.key, "outcome": "held"}, {"$set": _outcome(m, now)})
            for m in change.settled.values()
        ]
        leads, replaced = self._lead_writes(change)
        profiles = [_profile_write(update) for update in change.profiles.values()]
        settled, released = len(change.settled), len(change.release)
        profiles_replaced = sum(u.replaces is not None for u in change.profiles.values())
        parked = [InsertOne(self._dead_letter(d)) for d in change.parked]
        erasure = [erasures.record_write(change.erasure)] if change.erasure else []
        # A new revision: a change decided on the lead before it conflicts.
        purged = [
            DeleteOne({"_id": lead.lead_id, "version": lead.version}) for lead in change.purged
        ]
        sources = [DeleteOne({"_id": lead.source_key}) for lead in change.purged if lead.source_key]
        touched = [
            UpdateOne({"_id": lead_id, "version": version}, {"$inc": {"revision": 1}})
            for lead_id, version in change.republished.items()
        ]
        return [
            Write(self._processed, markers, matched=settled, duplicate=AlreadyProcessed),
            Write(self._leads, leads, replaced, len(change.claims), VersionConflict),
            Write(self._leads, touched, len(touched)),
            Write(self._leads, purged, deleted=len(purged)),
            Write(self._deadlines, [DeleteOne({"_id": lead.lead_id}) for lead in change.purged]),
            Write(self._sources, sources),
            Write(self._sources, _source_writes(change), duplicate=VersionConflict),
            Write(
                self._held,
                held.writes(change.hold.values(), change.release, self._keys),
                deleted=released,
            ),
            Write(self._deadlines, deadlines.writes(change.deadlines)),
            Write(self._tallies, tallies.writes(change)),
            Write(self._profiles, profiles, profiles_replaced, duplicate=VersionConflict),
            Write(self._dead_letters, parked),
            Write(self._erasures.records, erasure),
            Write(self._outbox, [InsertOne(d) for d in documents]),
        ]

    async def _write(
        self,
        session: AsyncClientSession,
        change: Change,
        steps: list[Write],
        documents: list[Document],
    ) -> None:
        for step in steps:
            if step.collection is self._held and change.arrivals:
                # Before its held actions are released: none was held meanwhile.
                await held.check_unchanged(self._held, change.arrivals, session)
            if step.collection is self._erasures.records and change.erasure:
                await self._erasures.redact(change.erasure, session)
            if step.collection is self._outbox:
                # Stamped last, just before the commit (the step's inserts hold
                # these very documents): the relay's wait (`LEADS_RELAY_AFTER`)
                # counts from there, not from before a transaction that a busy
                # store made long, which let the relay publish rows the consumer
                # was publishing too.
                outbox.stamp(documents, self._clock.now())
            await step.run(session)

    def _dead_letter(self, letter: DeadLetter) -> Document:
        document = dead_letters.to_document(letter)
        if self._keys is not None:
            document["subject_keys"] = erasures.keys_in_value(self._keys, letter.value)
        return document

    def _lead_writes(self, change: Change) -> tuple[list[Any], int]:
        operations: list[Any] = []
        for lead_id in change.claims:
            # Held for a lead that does not exist: touch its id so that the lead's
            # arrival, if it commits side by side, conflicts with this instead.
            operations += [InsertOne({"_id": lead_id, "claim": True}), DeleteOne({"_id": lead_id})]
        replaced = 0
        for write in change.leads.values():
            document = to_document(write.lead, self._keys)
            if write.expected_version is None:
                operations.append(InsertOne(document))
            else:
                replaced += 1
                guard = {
                    "_id": write.lead.lead_id,
                    "version": write.expected_version,
                    # Stored before leads had revisions: none is revision 0.
                    "revision": write.lead.revision or {"$in": [0, None]},
                }
                operations.append(ReplaceOne(guard, document))
        return operations, replaced

    # --- outbox (the relay's port) -----------------------------------------------------

    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), skip: SkipDocument = skip_none
    ) -> list[OutboxRow]:
        return await self.outbox.pending(limit, older_than, skip)

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        await self.outbox.mark_sent(ids)

    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None:
        await self.outbox.set_aside(refused)

    async def retry_set_aside(self, ids: Sequence[str] | None = None) -> int:
        async with self._client.start_session() as session:
            retried: int = await session.with_transaction(
                lambda s: self.outbox.retry_set_aside(ids, s), **_TRANSACTION
            )
        return retried

    async def unsent_count(self) -> int:
        return await self.outbox.unsent_count()

    async def oldest_unsent(self) -> datetime | None:
        return await self.outbox.oldest_unsent()


_NEWEST = [("received_at", pymongo.DESCENDING)]
LOOKALIKES = IndexModel([("match_keys", pymongo.ASCENDING), *_NEWEST], name="lookalikes")
"""Open leads by their customer's match keys (hashed; emptied once a lead is archived)."""
ENDED = IndexModel(
    [("ended_at", pymongo.ASCENDING)],
    name="ended",
    partialFilterExpression={"stage": Stage.ARCHIVED.value},
)
"""Archived leads by when they ended: those past their retention are deleted."""
_LOOKALIKE_FIELDS = {"partner_id": 1, "stage": 1, "received_at": 1, "match_keys": 1}


def _lookalike(document: Document) -> LookAlike:
    return LookAlike(
        document["_id"],
        document["partner_id"],
        Stage(document["stage"]),
        document["received_at"],
        frozenset(document["match_keys"]),
    )


def _source_writes(change: Change) -> list[InsertOne[Document]]:
    """A new lead's source key, held once: a second lead for it conflicts."""
    return [
        InsertOne({"_id": w.lead.source_key, "lead_id": w.lead.lead_id})
        for w in change.leads.values()
        if w.expected_version is None and w.lead.source_key
    ]


def _duplicate(error: BulkWriteError) -> bool:
    return any(e.get("code") == _DUPLICATE_KEY for e in error.details.get("writeErrors", []))


def _outcome(marker: Marker, now: datetime) -> Document:
    fields = {
        "outcome": marker.outcome,
        "message_id": marker.message_id,
        "lead_id": marker.lead_id,
        "partner_id": marker.partner_id,
        "event": marker.event,
        "version": marker.version,
        "reason": marker.reason.value if marker.reason else None,
        "detail": marker.detail,
        "at": now,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _marker(marker: Marker, now: datetime) -> Document:
    return {"_id": marker.key, **_outcome(marker, now)}


def _profile_write(update: ProfileUpdate) -> InsertOne[Document] | ReplaceOne[Document]:
    document = update.profile.model_dump(mode="json")
    document.update({"_id": update.profile.partner_id, "updated_at": update.profile.updated_at})
    if update.replaces is None:
        return InsertOne(document)
    return ReplaceOne({"_id": update.profile.partner_id, "updated_at": update.replaces}, document)
