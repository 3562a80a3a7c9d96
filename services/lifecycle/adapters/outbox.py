"""The `outbox` collection: what committed batches have to publish.

One document per committed batch (split when large) holds its rows in order,
so committing a batch and marking it sent are one write each, however many
messages it publishes. A document is published and marked sent whole.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.read_concern import ReadConcern

from contracts.topics import Topic
from services.lifecycle.service_layer.outgoing import dead_letter_headers
from services.lifecycle.service_layer.ports import (
    Change,
    DeadLetter,
    OutboxRow,
    SkipDocument,
    in_publishing_order,
    skip_none,
)

Document = dict[str, Any]

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""Rows past this size go to another document (MongoDB's limit is 16 MB)."""

HEAD = {"lead_ids": 1, "count": 1}
"""What the relay reads of a document before it decides to read it whole."""


def indexes(retention: timedelta) -> list[IndexModel]:
    return [
        IndexModel(
            [("sent", ASCENDING), ("_id", ASCENDING)],
            name="unsent",
            partialFilterExpression={"sent": False},
        ),
        IndexModel(
            [("sent", ASCENDING), ("lead_ids", ASCENDING)],
            name="unsent_by_lead",
            partialFilterExpression={"sent": False},
        ),
        # Sent rows may hold a declined customer's e-mail: they do not stay.
        IndexModel(
            "sent_at", name="sent_expiry", expireAfterSeconds=int(retention.total_seconds())
        ),
    ]


def rows_for(change: Change, topic_prefix: str, event_source: str) -> list[Document]:
    """The outbox rows of a batch, in the order they are published."""
    rows = [
        {
            "topic": Topic(publication.message.topic).named(topic_prefix),
            "key": publication.message.key.encode() or None,
            "headers": [*publication.message.headers(event_source), *publication.trace],
            "value": publication.message.value,
            "lead_id": publication.message.key,
            "order": list(publication.order),
        }
        for publication in change.outgoing
    ]
    return rows + [_dead_letter_row(letter, topic_prefix) for letter in change.parked]


def _dead_letter_row(letter: DeadLetter, topic_prefix: str) -> Document:
    return {
        "topic": Topic.DEAD_LETTER.named(topic_prefix),
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
    }


def pack(rows: Sequence[Document], now: datetime) -> list[Document]:
    """The rows of one transaction, in order, in as few documents as fit."""
    documents: list[Document] = []
    chunk: list[Document] = []
    size = 0
    for row in rows:
        row_size = len(row["value"] or b"") + sum(len(k) + len(v) for k, v in row["headers"]) + 256
        if chunk and size + row_size > MAX_DOCUMENT_BYTES:
            documents.append(_document(chunk, now))
            chunk, size = [], 0
        chunk.append(row)
        size += row_size
    if chunk:
        documents.append(_document(chunk, now))
    return documents


def _document(rows: list[Document], now: datetime) -> Document:
    return {
        "_id": ObjectId(),
        "rows": rows,
        "lead_ids": sorted({row["lead_id"] for row in rows}),
        "count": len(rows),
        "created_at": now,
        "sent": False,
    }


def stamp(documents: Sequence[Document], now: datetime) -> None:
    """When the documents were committed, near enough: the relay waits from then."""
    for document in documents:
        document["created_at"] = now


def rows_of(document: Document) -> list[OutboxRow]:
    """The rows of a document as written (bytes and tuples as they were) or as read."""
    return [
        OutboxRow(
            id=document["_id"],
            topic=row["topic"],
            key=row["key"],
            headers=[(name, value) for name, value in row["headers"]],
            value=row["value"],
            lead_id=row["lead_id"],
            order=(row["order"][0], row["order"][1]),
            index=index,
        )
        for index, row in enumerate(document["rows"])
    ]


def _fields(row: OutboxRow) -> Document:
    """A row as the outbox stores it."""
    return {
        "topic": row.topic,
        "key": row.key,
        "headers": [list(header) for header in row.headers],
        "value": row.value,
        "lead_id": row.lead_id,
        "order": list(row.order),
    }


@dataclass(frozen=True)
class SetAside:
    """A row Kafka refused for good, kept for an operator (never its content here)."""

    id: str
    topic: str
    lead_id: str
    error: str
    set_aside_at: datetime
    size: int
    """Bytes of its value."""


def _without_set_aside_fields(document: Document) -> Document:
    return {k: v for k, v in document.items() if k not in ("_id", "error", "set_aside_at")}


class MongoOutbox:
    """The relay's view: unsent documents, oldest first, and marking them sent; rows
    Kafka refused for good, set aside until an operator retries them."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        now: Any,
        set_aside: AsyncCollection[Document] | None = None,
    ) -> None:
        # Reads the relay acts on see only majority-committed documents: a row a
        # fail-over rolls back is never published.
        self._outbox = collection.with_options(read_concern=ReadConcern("majority"))
        self._set_aside = (
            set_aside if set_aside is not None else collection.database["outbox_set_aside"]
        )
        self._now = now

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]:
        """Every unsent row of documents that hold rows of these leads."""
        if not lead_ids:
            return []
        found = self._outbox.find({"sent": False, "lead_ids": {"$in": list(lead_ids)}})
        return [row async for document in found for row in rows_of(document)]

    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), skip: SkipDocument = skip_none
    ) -> list[OutboxRow]:
        """About `limit` unsent rows committed at least `older_than` ago, oldest first,
        plus every other unsent document holding rows of the same leads, each lead's
        rows in the order they were committed. Documents are chosen by their heads
        and only those not left alone are read whole: under load most unsent ones
        are in hand with the consumer, and large."""
        cutoff = self._now() - older_than
        chosen: list[Any] = []
        leads: set[str] = set()
        rows = 0
        heads = self._outbox.find({"sent": False, "created_at": {"$lte": cutoff}}, HEAD)
        async for head in heads.sort("_id", ASCENDING):
            if not skip(head["_id"], head["lead_ids"]):
                chosen.append(head["_id"])
                leads.update(head["lead_ids"])
                rows += head.get("count", 1)
                if rows >= limit:
                    break
        if not chosen:
            return []
        related = self._outbox.find({"sent": False, "lead_ids": {"$in": sorted(leads)}}, HEAD)
        chosen += [h["_id"] async for h in related if not skip(h["_id"], h["lead_ids"])]
        documents = self._outbox.find({"_id": {"$in": sorted(set(chosen))}, "sent": False})
        return in_publishing_order([row async for d in documents for row in rows_of(d)])

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        await self._outbox.update_many(
            {"_id": {"$in": sorted(set(ids))}}, {"$set": {"sent": True, "sent_at": self._now()}}
        )

    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None:
        """Idempotent: a row set aside twice (its document published again after a
        crash) is kept once, under its document's id and its place in it."""
        now = self._now()
        await self._set_aside.bulk_write(
            [
                UpdateOne(
                    {"_id": f"{row.id}:{row.index}"},
                    {"$setOnInsert": {**_fields(row), "error": error, "set_aside_at": now}},
                    upsert=True,
                )
                for row, error in refused
            ],
            ordered=False,
        )

    async def set_aside_rows(self, ids: Sequence[str] | None = None) -> list[SetAside]:
        query = {"_id": {"$in": list(ids)}} if ids else {}
        found = self._set_aside.find(query).sort("set_aside_at", ASCENDING)
        return [
            SetAside(
                d["_id"],
                d["topic"],
                d["lead_id"],
                d["error"],
                d["set_aside_at"],
                len(d["value"] or b""),
            )
            async for d in found
        ]

    async def set_aside_count(self) -> int:
        return await self._set_aside.count_documents({})

    async def retry_set_aside(self, ids: Sequence[str] | None, session: AsyncClientSession) -> int:
        """Back into the outbox as one new document, in their order (the relay publishes
        them; one refused again is set aside again); return how many."""
        query = {"_id": {"$in": list(ids)}} if ids else {}
        found = [d async for d in self._set_aside.find(query, session=session)]
        if not found:
            return 0
        rows = sorted(found, key=lambda d: (d["lead_id"], *d["order"], d["_id"]))
        for document in pack([_without_set_aside_fields(d) for d in rows], self._now()):
            await self._outbox.insert_one(document, session=session)
        await self._set_aside.delete_many(
            {"_id": {"$in": [d["_id"] for d in found]}}, session=session
        )
        return len(found)

    async def unsent_count(self) -> int:
        """Rows not yet published."""
        total = 0
        async for document in self._outbox.find({"sent": False}, {"rows.lead_id": 1}):
            total += len(document["rows"])
        return total

    async def oldest_unsent(self) -> datetime | None:
        oldest = await self._outbox.find_one(
            {"sent": False}, {"created_at": 1}, sort=[("_id", ASCENDING)]
        )
        return oldest["created_at"] if oldest else None
