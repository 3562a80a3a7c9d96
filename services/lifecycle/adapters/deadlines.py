"""The `deadlines` collection: one document per lead, holding the deadlines it still
waits on.

The lifecycle store writes it in the same transaction as the lead: the document
appears when the lead arrives, loses a deadline when the lead stops waiting on it
(or a reminder is handled) and goes when the lead waits on nothing more. The
scheduler reads the leads with something due through the `due` index, on the
earliest time one of their deadlines is to be emitted, and pushes back the next
emission of what it sent. A sweep's cost follows the number due, not the number
stored; a lead costs one document, whatever number of deadlines it has.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DeleteOne, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.lifecycle.domain.deadlines import Deadline, DeadlineChanges

Document = dict[str, Any]

INDEXES = [IndexModel([("next_emit_at", ASCENDING)], name="due")]


def _item(deadline: Deadline) -> Document:
    return {
        "id": deadline.command_id,
        "command": deadline.command,
        "due_at": deadline.due_at,
        "remaining_s": deadline.remaining.total_seconds() if deadline.remaining else None,
        "emit_at": deadline.due_at,
        "emissions": 0,
    }


def _deadline(lead_id: str, item: Document) -> Deadline:
    remaining = item.get("remaining_s")
    return Deadline(
        lead_id=lead_id,
        command=item["command"],
        due_at=item["due_at"],
        remaining=timedelta(seconds=remaining) if remaining is not None else None,
    )


def to_document(lead_id: str, deadlines: Sequence[Deadline]) -> Document:
    """A lead's deadlines, as stored when it arrives."""
    items = [_item(d) for d in deadlines]
    return {
        "_id": lead_id,
        "items": items,
        "next_emit_at": min(i["emit_at"] for i in items),
        "rev": 0,
    }


def writes(changes: Sequence[DeadlineChanges]) -> list[Any]:
    """Every lead's deadline changes, in order: part of the lifecycle store's transaction."""
    operations: list[Any] = []
    for change in changes:
        if change.fresh:
            operations.append(InsertOne(to_document(change.lead_id, change.add)))
        elif change.settled:
            operations.append(DeleteOne({"_id": change.lead_id}))
        else:
            operations += _pulls(change) + _pushes(change)
    return operations


def _pulls(change: DeadlineChanges) -> list[UpdateOne]:
    # The earliest emission it still records may now be too early: a sweep that
    # finds nothing due there sets it right.
    dropped = [("command", sorted(change.drop_commands)), ("id", list(change.drop_ids))]
    return [
        UpdateOne(
            {"_id": change.lead_id},
            {"$pull": {"items": {field: {"$in": values}}}, "$inc": {"rev": 1}},
        )
        for field, values in dropped
        if values
    ]


def _pushes(change: DeadlineChanges) -> list[UpdateOne]:
    """An accepted deal's deadlines set anew, after the pulls (one update may not
    both pull and push). Its document may have gone while it waited on nothing."""
    if not change.add:
        return []
    items = [_item(d) for d in change.add]
    update = {
        "$push": {"items": {"$each": items}},
        "$min": {"next_emit_at": min(i["emit_at"] for i in items)},
        "$inc": {"rev": 1},
    }
    return [UpdateOne({"_id": change.lead_id}, update, upsert=True)]


@dataclass(frozen=True)
class _Read:
    rev: int
    items: list[Document]


class MongoDueDeadlines:
    """The scheduler's view: what is due, and when to emit each again."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._deadlines = database["deadlines"]
        self._read: dict[str, _Read] = {}
        """The documents `due` read last, which `postpone` writes back."""

    async def ensure_indexes(self) -> None:
        await self._deadlines.create_indexes(INDEXES)

    async def due(self, now: datetime, limit: int) -> list[tuple[Deadline, int]]:
        """About `limit` deadlines due for emission, oldest first, each with how many
        times it was emitted already."""
        cursor = self._deadlines.find({"next_emit_at": {"$lte": now}}).sort(
            "next_emit_at", ASCENDING
        )
        self._read = {}
        found: list[tuple[datetime, Deadline, int]] = []
        async for document in cursor:
            self._read[document["_id"]] = _Read(document["rev"], document["items"])
            found += [
                (item["emit_at"], _deadline(document["_id"], item), item["emissions"])
                for item in document["items"]
                if item["emit_at"] <= now
            ]
            if len(found) >= limit:
                break
        found.sort(key=lambda entry: entry[0])
        return [(deadline, emissions) for _, deadline, emissions in found]

    async def postpone(self, next_emissions: Sequence[tuple[Deadline, datetime]]) -> None:
        """Record an emission: each deadline is due for emission again at the time given,
        unless the lead settles it first (the service drops it). A lead the service
        changed meanwhile keeps what the service wrote: it is read again next time."""
        later = {deadline.command_id: at for deadline, at in next_emissions}
        operations: list[Any] = []
        for lead_id, read in self._read.items():
            items = [
                {**item, "emit_at": later[item["id"]], "emissions": item["emissions"] + 1}
                if item["id"] in later
                else item
                for item in read.items
            ]
            guard = {"_id": lead_id, "rev": read.rev}
            if not items:
                operations.append(DeleteOne(guard))
                continue
            next_emit_at = min(item["emit_at"] for item in items)
            update = {"$set": {"items": items, "next_emit_at": next_emit_at}, "$inc": {"rev": 1}}
            operations.append(UpdateOne(guard, update))
        self._read = {}
        if operations:
            await self._deadlines.bulk_write(operations, ordered=False)

    async def count_due(self, now: datetime) -> int:
        """Leads with a deadline due."""
        return await self._deadlines.count_documents({"next_emit_at": {"$lte": now}})

    async def explain_due(self, now: datetime, limit: int) -> Document:
        """The query plan of `due`, for the bench."""
        cursor = self._deadlines.find({"next_emit_at": {"$lte": now}}).sort(
            "next_emit_at", ASCENDING
        )
        return await cursor.limit(limit).explain()
