"""The `dead_letters` collection: what was parked on leads.dead-letter, for
`leads dead-letters list` and `replay`. Written in the same transaction as the
parked message's marker and its dead-letter outbox row."""

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from services.lifecycle.service_layer.ports import DeadLetter

Document = dict[str, Any]

INDEXES = [
    IndexModel([("parked_at", ASCENDING)], name="parked"),
    # An action's status names a parked action by its message_id.
    IndexModel([("message_id", ASCENDING)], name="by_message"),
]


def to_document(letter: DeadLetter) -> Document:
    return {
        "_id": letter.id,
        "topic_name": letter.topic_name,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key,
        "value": letter.value,
        "headers": [list(header) for header in letter.headers],
        "error_class": letter.error_class,
        "error": letter.error,
        "message_id": letter.message_id,
        "lead_id": letter.lead_id,
        "parked_at": letter.parked_at,
        "replayed_at": None,
    }


def from_document(document: Document) -> DeadLetter:
    return DeadLetter(
        id=document["_id"],
        topic_name=document["topic_name"],
        partition=document["partition"],
        offset=document["offset"],
        key=document["key"],
        value=bytes(document["value"]),
        headers=tuple((k, bytes(v)) for k, v in document["headers"]),
        error_class=document["error_class"],
        error=document["error"],
        message_id=document.get("message_id"),
        lead_id=document.get("lead_id"),
        parked_at=document["parked_at"],
    )


class DeadLetters:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._letters = collection

    async def parked(
        self, ids: list[str] | None = None
    ) -> list[tuple[DeadLetter, datetime | None]]:
        """Parked messages, oldest first, each with when it was replayed (if it was)."""
        query: Document = {"_id": {"$in": ids}} if ids else {}
        cursor = self._letters.find(query).sort("parked_at", ASCENDING)
        return [(from_document(d), d.get("replayed_at")) async for d in cursor]

    async def mark_replayed(self, letter_id: str, at: datetime) -> None:
        await self._letters.update_one({"_id": letter_id}, {"$set": {"replayed_at": at}})
