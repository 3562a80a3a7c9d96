"""Erasure in MongoDB: finding what holds a customer's data by their keyed hashes
(`privacy.SubjectKeys`), redacting every stored copy inside an erasure's
transaction, and the `erasures` collection, each request's progress and proof.

Every collection that may hold a customer's e-mail or phone carries `subject_keys`
(their hashes, indexed), or is found through the leads that do: the outbox and
its set-aside rows by lead id.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.lifecycle.domain.privacy import Subject, SubjectKeys
from services.lifecycle.service_layer.ports import ErasureRecord

Document = dict[str, Any]

BY_SUBJECT = IndexModel([("subject_keys", ASCENDING)], name="by_subject")
"""On leads, held actions, dead letters and erasures: who they hold data of, hashed."""
BY_LEAD = IndexModel([("lead_id", ASCENDING)], name="by_lead")
OUTBOX_BY_LEAD = IndexModel([("lead_ids", ASCENDING)], name="by_lead")
"""Sent documents too: they keep what was published until their retention ends."""


def keys_in_value(keys: SubjectKeys, value: bytes) -> list[str]:
    """The customers a raw message holds data of, when it is JSON."""
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return []
    return sorted(keys.in_document(document))


def redacted_value(subject: Subject, value: bytes) -> bytes:
    """A message's bytes without the customer: re-rendered when JSON, else each of
    their texts replaced where it stands. The same bytes when nothing was theirs."""
    try:
        document = json.loads(value)
        redacted = subject.redacted(document)
    except (ValueError, RecursionError):  # not JSON, or nested past what we walk
        return subject.redacted_bytes(value)
    if redacted == document:
        return value
    rendered = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)
    return rendered.encode("utf-8", "surrogatepass")  # a lone surrogate, as it came


def redacted_rows(
    subject: Subject, rows: list[Document], lead_ids: set[str]
) -> list[Document] | None:
    """An outbox document's rows with those of these leads redacted; None when none
    held anything of the customer."""
    redacted = [
        {**row, "value": redacted_value(subject, bytes(row["value"]))}
        if row["lead_id"] in lead_ids and row["value"] is not None  # not a tombstone
        else row
        for row in rows
    ]
    return redacted if redacted != rows else None


def record_write(record: ErasureRecord) -> UpdateOne:
    """Merged into what is stored, never replacing it: two pages of one request
    committing side by side (a partition handed over mid-request) both count."""
    update: Document = {
        "$addToSet": {
            name: {"$each": sorted(values)}
            for name, values in (
                ("subject_keys", record.subject_keys),
                ("lead_ids", record.lead_ids),
                ("partner_ids", record.partner_ids),
            )
        },
        "$setOnInsert": {"requested_at": record.requested_at, "erased_at": record.erased_at},
    }
    if record.completed_at is not None:
        update["$min"] = {"completed_at": record.completed_at}
    return UpdateOne({"_id": record.request_id}, update, upsert=True)


def from_document(document: Document) -> ErasureRecord:
    return ErasureRecord(
        request_id=document["_id"],
        subject_keys=frozenset(document["subject_keys"]),
        requested_at=document["requested_at"],
        erased_at=document["erased_at"],
        lead_ids=tuple(document["lead_ids"]),
        partner_ids=tuple(document["partner_ids"]),
        completed_at=document.get("completed_at"),
    )


@dataclass(frozen=True)
class Redacted:
    """How many stored copies an erasure's page redacted, by collection."""

    held_actions: int = 0
    dead_letters: int = 0
    outbox_documents: int = 0
    set_aside: int = 0


class Erasures:
    """The erasure's reads and its writes inside a transaction."""

    def __init__(self, database: AsyncDatabase[Document], keys: SubjectKeys) -> None:
        self._db = database
        self._keys = keys
        self.records = database["erasures"]

    async def ensure_indexes(self) -> None:
        for name in ("leads", "held_actions", "dead_letters", "erasures"):
            await self._db[name].create_indexes([BY_SUBJECT])
        await self._db["dead_letters"].create_indexes([BY_LEAD])
        await self._db["outbox_set_aside"].create_indexes([BY_LEAD])
        await self._db["outbox"].create_indexes([OUTBOX_BY_LEAD])

    async def erased_among(self, subject_keys: Sequence[str]) -> dict[str, datetime]:
        if not subject_keys:
            return {}
        wanted = set(subject_keys)
        erased: dict[str, datetime] = {}
        query = {"subject_keys": {"$in": sorted(wanted)}}
        async for document in self.records.find(query, {"subject_keys": 1, "erased_at": 1}):
            for key in wanted.intersection(document["subject_keys"]):
                erased[key] = max(erased.get(key, document["erased_at"]), document["erased_at"])
        return erased

    async def record(self, request_id: str) -> ErasureRecord | None:
        found = await self.records.find_one({"_id": request_id})
        return from_document(found) if found else None

    async def redact(self, record: ErasureRecord, session: AsyncClientSession) -> Redacted:
        """Every copy of the customer's data outside the leads, redacted in the
        erasure's transaction: held actions and dead letters by the customer's keys,
        outbox rows (sent or not) and set-aside rows by lead."""
        subject = record.redact
        if subject is None:
            return Redacted()
        keys = {"subject_keys": {"$in": sorted(subject.keys)}}
        held = await self._redact_held(subject, keys, session)
        letter_ids, letters = await self._redact_dead_letters(subject, keys, record, session)
        lead_ids = sorted({*record.redact_lead_ids, *letter_ids})
        documents = await self._redact_outbox(subject, lead_ids, session)
        set_aside = await self._redact_each(
            self._db["outbox_set_aside"], {"lead_id": {"$in": lead_ids}}, subject, session
        )
        return Redacted(held, letters, documents, set_aside)

    async def _redact_held(
        self, subject: Subject, query: Document, session: AsyncClientSession
    ) -> int:
        updates = []
        async for document in self._db["held_actions"].find(query, session=session):
            action = subject.redacted(document["action"])
            found = sorted(self._keys.in_document(action))
            updates.append(
                UpdateOne(
                    {"_id": document["_id"]}, {"$set": {"action": action, "subject_keys": found}}
                )
            )
        return await _written(self._db["held_actions"], updates, session)

    async def _redact_dead_letters(
        self,
        subject: Subject,
        query: Document,
        record: ErasureRecord,
        session: AsyncClientSession,
    ) -> tuple[list[str], int]:
        # Two finds, each on its index (an $or may be planned as a scan), merged.
        letters = self._db["dead_letters"]
        by_lead = {"lead_id": {"$in": list(record.redact_lead_ids)}}
        matched = {d["_id"]: d async for d in letters.find(query, session=session)}
        matched |= {d["_id"]: d async for d in letters.find(by_lead, session=session)}
        ids, updates = [], []
        for document in matched.values():
            # Its outbox row is filed under the lead it names, else under its own id.
            ids.append(document.get("lead_id") or document["_id"])
            value = redacted_value(subject, bytes(document["value"]))
            found = keys_in_value(self._keys, value)
            updates.append(
                UpdateOne(
                    {"_id": document["_id"]}, {"$set": {"value": value, "subject_keys": found}}
                )
            )
        return ids, await _written(letters, updates, session)

    async def _redact_outbox(
        self, subject: Subject, lead_ids: list[str], session: AsyncClientSession
    ) -> int:
        if not lead_ids:
            return 0
        ours = set(lead_ids)
        updates = []
        found = self._db["outbox"].find({"lead_ids": {"$in": lead_ids}}, session=session)
        async for document in found:
            if (rows := redacted_rows(subject, document["rows"], ours)) is not None:
                updates.append(UpdateOne({"_id": document["_id"]}, {"$set": {"rows": rows}}))
        return await _written(self._db["outbox"], updates, session)

    async def _redact_each(
        self,
        collection: AsyncCollection[Document],
        query: Document,
        subject: Subject,
        session: AsyncClientSession,
    ) -> int:
        updates = []
        async for document in collection.find(query, session=session):
            if document["value"] is None:
                continue  # a tombstone
            value = redacted_value(subject, bytes(document["value"]))
            if value != document["value"]:
                updates.append(UpdateOne({"_id": document["_id"]}, {"$set": {"value": value}}))
        return await _written(collection, updates, session)


async def _written(
    collection: AsyncCollection[Document], updates: list[Any], session: AsyncClientSession
) -> int:
    if updates:
        await collection.bulk_write(updates, session=session)
    return len(updates)
