"""MongoDB through PyMongo's async API: leads, dedupe markers, the outbox, deadlines,
held actions, partner tallies and dead letters.

One transaction per batch holds everything the batch decided, written with a
few bulk operations; every assumption the batch was decided on is checked again
inside it (lead versions, markers, held actions), so a crash or a concurrent
writer anywhere leaves all or nothing, and a stale decision commits nothing.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import (
    ASCENDING,
    AsyncMongoClient,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    UpdateOne,
)
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.lifecycle.adapters import dead_letters, deadlines, held, tallies
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.outgoing import dead_letter_headers
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    DeadLetter,
    HeldAction,
    Marker,
    OutboxRow,
    ProfileUpdate,
    VersionConflict,
    in_publishing_order,
)

Document = dict[str, Any]

# Times the sweeps and inbox queries filter or sort on are stored as BSON dates.
_DATE_FIELDS = ("received_at", "respond_by", "hot_until", "answered_at")
_DUPLICATE_KEY = 11000


def connect(uri: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(uri, tz_aware=True, appname="leads-service")


def to_document(lead: Lead) -> Document:
    document = lead.model_dump(mode="json")
    document.update({name: getattr(lead, name) for name in _DATE_FIELDS})
    document["_id"] = lead.lead_id
    document["tab"] = lead.tab.value
    return document


def from_document(document: Document) -> Lead:
    return Lead.model_validate(document)


class MongoStore:
    """The `LeadStore` port, plus the outbox the relay drains."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        clock: Clock,
        topic_prefix: str = "",
        event_source: str = "leads-service",
        outbox_retention: timedelta = timedelta(days=7),
    ) -> None:
        self._client = client
        self._db: AsyncDatabase[Document] = client[database]
        self._leads = self._db["leads"]
        self._processed = self._db["processed_messages"]
        self._outbox = self._db["outbox"]
        self._deadlines = self._db["deadlines"]
        self._profiles = self._db["partner_profiles"]
        self._held = self._db["held_actions"]
        self._tallies = self._db["partner_tallies"]
        self._dead_letters = self._db["dead_letters"]
        self._clock = clock
        self._prefix = topic_prefix
        self._source = event_source
        self._retention = outbox_retention

    @property
    def database(self) -> AsyncDatabase[Document]:
        return self._db

    async def ensure_indexes(self) -> None:
        """Idempotent; run at start-up. The lead id is `_id`, unique by nature; the
        inbox's indexes on leads are the read side's (`adapters.inbox`)."""
        await self._deadlines.create_indexes(deadlines.INDEXES)
        await self._held.create_indexes(held.INDEXES)
        await self._tallies.create_indexes(tallies.INDEXES)
        await self._outbox.create_indexes(
            [
                IndexModel(
                    [("sent", ASCENDING), ("_id", ASCENDING)],
                    name="unsent",
                    partialFilterExpression={"sent": False},
                ),
                IndexModel(
                    [("sent", ASCENDING), ("lead_id", ASCENDING)],
                    name="unsent_by_lead",
                    partialFilterExpression={"sent": False},
                ),
                # Sent rows may hold a declined customer's e-mail: they do not stay.
                IndexModel(
                    "sent_at",
                    name="sent_expiry",
                    expireAfterSeconds=int(self._retention.total_seconds()),
                ),
            ]
        )
        await self._dead_letters.create_indexes(dead_letters.INDEXES)

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

    async def load_profile(self, partner_id: str) -> PartnerProfile | None:
        return (await self.load_profiles([partner_id])).get(partner_id)

    async def load_profiles(self, partner_ids: Sequence[str]) -> dict[str, PartnerProfile]:
        if not partner_ids:
            return {}
        found = self._profiles.find({"_id": {"$in": list(partner_ids)}})
        return {d["_id"]: PartnerProfile.model_validate(d) async for d in found}

    async def held_for(self, lead_ids: Sequence[str]) -> dict[str, list[HeldAction]]:
        return await held.of_leads(self._held, lead_ids)

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]:
        if not lead_ids:
            return []
        found = self._outbox.find({"sent": False, "lead_id": {"$in": list(lead_ids)}})
        return [_row(document) async for document in found]

    # --- the batch's transaction -------------------------------------------------------

    async def commit(self, change: Change) -> list[OutboxRow]:
        now = self._clock.now()
        rows = self._rows(change, now)
        async with self._client.start_session() as session:
            # A transient error retries the whole callback: every check runs again.
            await session.with_transaction(lambda s: self._write(s, change, rows, now))
        return [_row(row) for row in rows]

    async def _write(
        self, session: AsyncClientSession, change: Change, rows: list[Document], now: datetime
    ) -> None:
        await self._write_markers(session, change, now)
        await self._write_leads(session, change)
        if change.arrivals:
            await held.check_unchanged(self._held, change.arrivals, session)
        if change.hold or change.release:
            await held.apply(self._held, change.hold.values(), change.release, session)
        if rows:
            await self._outbox.insert_many(rows, session=session)
        if change.deadlines:
            await deadlines.apply(self._deadlines, change.deadlines, session)
        await tallies.apply(self._tallies, change, session)
        for update in change.profiles.values():
            await self._save_profile(session, update)
        if change.parked:
            await self._dead_letters.insert_many(
                [dead_letters.to_document(letter) for letter in change.parked], session=session
            )

    async def _write_markers(
        self, session: AsyncClientSession, change: Change, now: datetime
    ) -> None:
        operations: list[Any] = [
            InsertOne(_marker_document(marker, now)) for marker in change.markers.values()
        ]
        operations += [
            UpdateOne({"_id": marker.key, "outcome": "held"}, {"$set": _outcome(marker, now)})
            for marker in change.settled.values()
        ]
        if not operations:
            return
        try:
            result = await self._processed.bulk_write(operations, session=session)
        except BulkWriteError as error:
            if _duplicate(error):
                raise AlreadyProcessed("a message of the batch was handled meanwhile") from None
            raise
        if result.matched_count != len(change.settled):
            raise VersionConflict("a held action was settled meanwhile")

    async def _write_leads(self, session: AsyncClientSession, change: Change) -> None:
        operations: list[Any] = []
        for lead_id in change.claims:
            # Held for a lead that does not exist: touch its id so that the lead's
            # arrival, if it commits side by side, conflicts with this instead.
            operations += [InsertOne({"_id": lead_id, "claim": True}), DeleteOne({"_id": lead_id})]
        replaced = 0
        for write in change.leads.values():
            document = to_document(write.lead)
            if write.expected_version is None:
                operations.append(InsertOne(document))
            else:
                replaced += 1
                operations.append(
                    ReplaceOne(
                        {"_id": write.lead.lead_id, "version": write.expected_version}, document
                    )
                )
        if not operations:
            return
        try:
            result = await self._leads.bulk_write(operations, session=session)
        except BulkWriteError as error:
            if _duplicate(error):
                raise VersionConflict("a lead of the batch was created meanwhile") from None
            raise
        if result.matched_count != replaced:
            raise VersionConflict("a lead of the batch was changed meanwhile")

    async def _save_profile(self, session: AsyncClientSession, update: ProfileUpdate) -> None:
        document = update.profile.model_dump(mode="json")
        document.update({"_id": update.profile.partner_id, "updated_at": update.profile.updated_at})
        if update.replaces is None:
            try:
                await self._profiles.insert_one(document, session=session)
            except DuplicateKeyError:
                raise VersionConflict(update.profile.partner_id) from None
            return
        result = await self._profiles.replace_one(
            {"_id": update.profile.partner_id, "updated_at": update.replaces},
            document,
            session=session,
        )
        if result.matched_count == 0:
            raise VersionConflict(update.profile.partner_id)

    def _rows(self, change: Change, now: datetime) -> list[Document]:
        rows = [
            {
                "_id": ObjectId(),
                "topic": Topic(publication.message.topic).named(self._prefix),
                "key": publication.message.key.encode() or None,
                "headers": publication.message.headers(self._source),
                "value": publication.message.value,
                "lead_id": publication.message.key,
                "order": list(publication.order),
                "created_at": now,
                "sent": False,
            }
            for publication in change.outgoing
        ]
        rows += [self._dead_letter_row(letter, now) for letter in change.parked]
        return rows

    def _dead_letter_row(self, letter: DeadLetter, now: datetime) -> Document:
        return {
            "_id": ObjectId(),
            "topic": Topic.DEAD_LETTER.named(self._prefix),
            "key": letter.key,
            "headers": dead_letter_headers(
                letter.headers,
                letter_id=letter.id,
                topic_name=letter.topic_name,
                partition=letter.partition,
                offset=letter.offset,
                error_class=letter.error_class,
                error=letter.error,
                parked_at=letter.parked_at,
            ),
            "value": letter.value,
            "lead_id": letter.lead_id or letter.id,
            "order": [0, 0],
            "created_at": now,
            "sent": False,
        }

    # --- outbox ----------------------------------------------------------------------

    async def pending(self, limit: int, older_than: timedelta = timedelta(0)) -> list[OutboxRow]:
        """Up to `limit` unsent rows committed at least `older_than` ago, plus every
        older unsent row of the same leads, each lead's rows in the order they were
        committed."""
        cutoff = self._clock.now() - older_than
        first = (
            await self._outbox.find({"sent": False, "created_at": {"$lte": cutoff}})
            .sort("_id", ASCENDING)
            .to_list(limit)
        )
        if not first:
            return []
        leads = sorted({row["lead_id"] for row in first})
        rows = {row["_id"]: row for row in first}
        async for row in self._outbox.find({"sent": False, "lead_id": {"$in": leads}}):
            rows.setdefault(row["_id"], row)
        return in_publishing_order(_row(r) for r in rows.values())

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        await self._outbox.update_many(
            {"_id": {"$in": list(ids)}}, {"$set": {"sent": True, "sent_at": self._clock.now()}}
        )

    async def unsent_count(self) -> int:
        return await self._outbox.count_documents({"sent": False})

    async def oldest_unsent(self) -> datetime | None:
        oldest = await self._outbox.find_one(
            {"sent": False}, {"created_at": 1}, sort=[("_id", ASCENDING)]
        )
        return oldest["created_at"] if oldest else None


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


def _marker_document(marker: Marker, now: datetime) -> Document:
    return {"_id": marker.key, **_outcome(marker, now)}


def _row(document: Document) -> OutboxRow:
    return OutboxRow(
        id=document["_id"],
        topic=document["topic"],
        key=document["key"],
        headers=[(k, bytes(v)) for k, v in document["headers"]],
        value=bytes(document["value"]),
        lead_id=document["lead_id"],
        order=(document["order"][0], document["order"][1]),
    )
