"""The `outbox` collection: what committed batches have to publish.

One document per committed batch (split when large) holds its rows in order,
so committing a batch and marking it sent are one write each, however many
messages it publishes. A document is published and marked sent whole.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.lifecycle.service_layer.ports import (
    Leave,
    OutboxRow,
    in_publishing_order,
    leave_none,
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


def pack(rows: Sequence[Document], now: datetime) -> list[Document]:
    """The rows of one transaction, in order, in as few documents as fit."""
    documents: list[Document] = []
    chunk: list[Document] = []
    size = 0
    for row in rows:
        row_size = len(row["value"]) + sum(len(k) + len(v) for k, v in row["headers"]) + 256
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
        )
        for row in document["rows"]
    ]


class MongoOutbox:
    """The relay's view: unsent documents, oldest first, and marking them sent."""

    def __init__(self, collection: AsyncCollection[Document], now: Any) -> None:
        self._outbox = collection
        self._now = now

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]:
        """Every unsent row of documents that hold rows of these leads."""
        if not lead_ids:
            return []
        found = self._outbox.find({"sent": False, "lead_ids": {"$in": list(lead_ids)}})
        return [row async for document in found for row in rows_of(document)]

    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), leave: Leave = leave_none
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
            if not leave(head["_id"], head["lead_ids"]):
                chosen.append(head["_id"])
                leads.update(head["lead_ids"])
                rows += head.get("count", 1)
                if rows >= limit:
                    break
        if not chosen:
            return []
        related = self._outbox.find({"sent": False, "lead_ids": {"$in": sorted(leads)}}, HEAD)
        chosen += [h["_id"] async for h in related if not leave(h["_id"], h["lead_ids"])]
        documents = self._outbox.find({"_id": {"$in": sorted(set(chosen))}, "sent": False})
        return in_publishing_order([row async for d in documents for row in rows_of(d)])

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        await self._outbox.update_many(
            {"_id": {"$in": sorted(set(ids))}}, {"$set": {"sent": True, "sent_at": self._now()}}
        )

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
