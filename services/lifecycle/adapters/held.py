"""The `held_actions` collection: partner actions waiting for their lead.

Written in the same transaction as the action's marker; deleted in the
transaction that applies it (its lead arrived) or refuses it (its grace ended).
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DeleteOne, IndexModel, InsertOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.ports import HeldAction, VersionConflict

Document = dict[str, Any]

INDEXES = [
    IndexModel([("lead_id", ASCENDING), ("held_at", ASCENDING)], name="by_lead"),
    IndexModel([("expires_at", ASCENDING)], name="expiry"),
]


def to_document(action: HeldAction) -> Document:
    return {
        "_id": action.key,
        "lead_id": action.lead_id,
        "partner_id": action.partner_id,
        "action": action.action,
        "held_at": action.held_at,
        "expires_at": action.expires_at,
        "arrival": list(action.arrival),
        "source_topic": action.source_topic,
    }


def from_document(document: Document) -> HeldAction:
    return HeldAction(
        key=document["_id"],
        lead_id=document["lead_id"],
        partner_id=document["partner_id"],
        action=document["action"],
        held_at=document["held_at"],
        expires_at=document["expires_at"],
        arrival=(document["arrival"][0], document["arrival"][1]),
        source_topic=document["source_topic"],
    )


def arrival_order(action: HeldAction) -> tuple[datetime, int, int]:
    return (action.held_at, *action.arrival)


async def of_leads(
    collection: AsyncCollection[Document], lead_ids: Sequence[str]
) -> dict[str, list[HeldAction]]:
    """Per lead id, the actions held for it, in the order they came."""
    if not lead_ids:
        return {}
    found: dict[str, list[HeldAction]] = {}
    async for document in collection.find({"lead_id": {"$in": list(lead_ids)}}):
        action = from_document(document)
        found.setdefault(action.lead_id, []).append(action)
    for actions in found.values():
        actions.sort(key=arrival_order)
    return found


async def check_unchanged(
    collection: AsyncCollection[Document],
    expected: Mapping[str, frozenset[str]],
    session: AsyncClientSession,
) -> None:
    """Inside the transaction: the actions held for these new leads are still the
    ones they were decided with (none was held meanwhile)."""
    now_held: dict[str, set[str]] = {lead_id: set() for lead_id in expected}
    cursor = collection.find(
        {"lead_id": {"$in": list(expected)}}, {"_id": 1, "lead_id": 1}, session=session
    )
    async for document in cursor:
        now_held[document["lead_id"]].add(document["_id"])
    if any(now_held[lead_id] != keys for lead_id, keys in expected.items()):
        raise VersionConflict("an action was held for a new lead meanwhile")


def writes(
    hold: Iterable[HeldAction], release: Sequence[str], keys: SubjectKeys | None = None
) -> list[Any]:
    """Release (delete) the settled actions, hold the new ones (with the keys of the
    customers whose data they hold, for their erasure)."""
    operations: list[Any] = [DeleteOne({"_id": key}) for key in release]
    for action in hold:
        document = to_document(action)
        if keys is not None:
            document["subject_keys"] = sorted(keys.in_document(action.action))
        operations.append(InsertOne(document))
    return operations


async def expired(
    collection: AsyncCollection[Document], now: datetime, limit: int
) -> list[HeldAction]:
    cursor = collection.find({"expires_at": {"$lte": now}}).sort("expires_at", ASCENDING)
    return [from_document(document) for document in await cursor.to_list(limit)]


async def count(collection: AsyncCollection[Document]) -> int:
    return await collection.estimated_document_count()
