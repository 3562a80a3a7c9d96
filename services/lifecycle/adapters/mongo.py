"""MongoDB through PyMongo's async API: leads, dedupe markers, the outbox and deadlines.

One transaction per handled message holds the processed-message marker, the
versioned lead, the outbox rows and the lead's deadline changes, so a crash
anywhere leaves all or nothing.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.lifecycle.adapters import deadlines, performance
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    OutboxRow,
    ProfileUpdate,
    VersionConflict,
)

Document = dict[str, Any]

# Times the sweeps and inbox queries filter or sort on are stored as BSON dates.
_DATE_FIELDS = ("received_at", "respond_by", "hot_until", "answered_at")


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
        self._performance = self._db["partner_performance"]
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

    # --- LeadStore -------------------------------------------------------------------

    async def is_processed(self, dedupe_key: str) -> bool:
        return await self._processed.find_one({"_id": dedupe_key}, {"_id": 1}) is not None

    async def load(self, lead_id: str) -> Lead | None:
        document = await self._leads.find_one({"_id": lead_id})
        return from_document(document) if document else None

    async def load_profile(self, partner_id: str) -> PartnerProfile | None:
        document = await self._profiles.find_one({"_id": partner_id})
        return PartnerProfile.model_validate(document) if document else None

    async def commit(self, change: Change) -> None:
        async with self._client.start_session() as session:
            await session.with_transaction(lambda s: self._write(s, change))

    async def _write(self, session: AsyncClientSession, change: Change) -> None:
        now = self._clock.now()
        try:
            await self._processed.insert_one({"_id": change.dedupe_key, "at": now}, session=session)
        except DuplicateKeyError:
            raise AlreadyProcessed(change.dedupe_key) from None
        if change.lead is not None:
            await self._save(session, change.lead, change.expected_version)
            await performance.mark_changed(self._performance, change.lead.partner_id, session)
        if change.outgoing:
            await self._outbox.insert_many(self._rows(change, now), session=session)
        if change.deadlines is not None:
            await deadlines.apply(self._deadlines, change.deadlines, session)
        if change.profile is not None:
            await self._save_profile(session, change.profile)

    async def _save(self, session: AsyncClientSession, lead: Lead, expected: int | None) -> None:
        document = to_document(lead)
        if expected is None:
            try:
                await self._leads.insert_one(document, session=session)
            except DuplicateKeyError:
                raise VersionConflict(lead.lead_id) from None
            return
        result = await self._leads.replace_one(
            {"_id": lead.lead_id, "version": expected}, document, session=session
        )
        if result.matched_count == 0:
            raise VersionConflict(lead.lead_id)

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
        version = change.lead.version if change.lead else (change.expected_version or 0)
        return [
            {
                "_id": ObjectId(),
                "topic": Topic(message.topic).named(self._prefix),
                "key": message.key,
                "headers": [[k, v.decode()] for k, v in message.headers(self._source)],
                "value": message.value.decode(),
                "lead_id": message.key,
                "order": [version, position],
                "created_at": now,
                "sent": False,
            }
            for position, message in enumerate(change.outgoing)
        ]

    # --- outbox ----------------------------------------------------------------------

    async def pending(self, limit: int) -> list[OutboxRow]:
        """Up to `limit` unsent rows, plus every older unsent row of the same leads,
        each lead's rows in the order they were committed."""
        first = await self._outbox.find({"sent": False}).sort("_id", ASCENDING).to_list(limit)
        if not first:
            return []
        leads = sorted({row["lead_id"] for row in first})
        rows = {row["_id"]: row for row in first}
        async for row in self._outbox.find({"sent": False, "lead_id": {"$in": leads}}):
            rows.setdefault(row["_id"], row)
        ordered = sorted(rows.values(), key=lambda r: (r["lead_id"], *r["order"], r["_id"]))
        return [_row(r) for r in ordered]

    async def mark_sent(self, ids: Sequence[ObjectId]) -> None:
        await self._outbox.update_many(
            {"_id": {"$in": list(ids)}}, {"$set": {"sent": True, "sent_at": self._clock.now()}}
        )

    async def unsent_count(self) -> int:
        return await self._outbox.count_documents({"sent": False})


def _row(document: Document) -> OutboxRow:
    return OutboxRow(
        id=document["_id"],
        topic=document["topic"],
        key=document["key"],
        headers=[(k, v.encode()) for k, v in document["headers"]],
        value=document["value"].encode(),
        lead_id=document["lead_id"],
        order=(document["order"][0], document["order"][1]),
    )
