"""The `deadlines` collection: one document per pending deadline of a lead.

The lifecycle store writes it in the same transaction as the lead (a lead's
deadlines appear when it arrives and go when it stops waiting on them); the
scheduler reads what is due through the `due` index and pushes back the next
emission of what it has sent. A sweep's cost follows the number due, not the
number stored.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DeleteMany, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.lifecycle.domain.deadlines import Deadline, DeadlineChanges

Document = dict[str, Any]

INDEXES = [
    IndexModel([("emit_at", ASCENDING)], name="due"),
    IndexModel([("lead_id", ASCENDING), ("command", ASCENDING)], name="by_lead"),
]


def to_document(deadline: Deadline) -> Document:
    return {
        "_id": deadline.command_id,
        "lead_id": deadline.lead_id,
        "command": deadline.command,
        "due_at": deadline.due_at,
        "remaining_s": deadline.remaining.total_seconds() if deadline.remaining else None,
        "emit_at": deadline.due_at,
        "emissions": 0,
    }


def from_document(document: Document) -> Deadline:
    remaining = document.get("remaining_s")
    return Deadline(
        lead_id=document["lead_id"],
        command=document["command"],
        due_at=document["due_at"],
        remaining=timedelta(seconds=remaining) if remaining is not None else None,
    )


def writes(changes: Sequence[DeadlineChanges]) -> list[Any]:
    """Every lead's deadline changes, in order: part of the lifecycle store's transaction."""
    operations: list[Any] = []
    for change in changes:
        operations += [InsertOne(to_document(d)) for d in change.add]
        if change.drop_commands:
            dropped = {"lead_id": change.lead_id, "command": {"$in": sorted(change.drop_commands)}}
            operations.append(DeleteMany(dropped))
        if change.drop_ids:
            operations.append(DeleteMany({"_id": {"$in": list(change.drop_ids)}}))
    return operations


class DueDeadlines:
    """The scheduler's view: what is due, and when to emit each again."""

    def __init__(self, deadlines: AsyncCollection[Document]) -> None:
        self._deadlines = deadlines

    async def ensure_indexes(self) -> None:
        await self._deadlines.create_indexes(INDEXES)

    async def due(self, now: datetime, limit: int) -> list[tuple[Deadline, int]]:
        """Up to `limit` deadlines due for emission, oldest first, each with how
        many times it was emitted already."""
        cursor = self._deadlines.find({"emit_at": {"$lte": now}}).sort("emit_at", ASCENDING)
        return [(from_document(d), d["emissions"]) for d in await cursor.to_list(limit)]

    async def postpone(self, next_emissions: Sequence[tuple[Deadline, datetime]]) -> None:
        """Record an emission: each deadline is due for emission again at the time given,
        unless the lead settles it first (the service deletes it)."""
        if next_emissions:
            await self._deadlines.bulk_write(
                [
                    UpdateOne(
                        {"_id": deadline.command_id},
                        {"$set": {"emit_at": at}, "$inc": {"emissions": 1}},
                    )
                    for deadline, at in next_emissions
                ],
                ordered=False,
            )

    async def count_due(self, now: datetime) -> int:
        return await self._deadlines.count_documents({"emit_at": {"$lte": now}})

    async def explain_due(self, now: datetime, limit: int) -> Document:
        """The query plan of `due`, for the bench."""
        cursor = self._deadlines.find({"emit_at": {"$lte": now}}).sort("emit_at", ASCENDING)
        return await cursor.limit(limit).explain()
