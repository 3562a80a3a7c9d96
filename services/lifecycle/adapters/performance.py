"""Which partners' figures may have changed, and the figures last published.

The lead's transaction bumps its partner's `changes` counter; the feedback job
settles a partner only if the counter did not move while it computed.
"""

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from contracts.performance import PartnerPerformance

Document = dict[str, Any]

INDEXES = [
    IndexModel(
        [("stale", ASCENDING), ("_id", ASCENDING)],
        name="stale_partners",
        partialFilterExpression={"stale": True},
    )
]


async def mark_changed(
    collection: AsyncCollection[Document], partner_id: str, session: AsyncClientSession
) -> None:
    await collection.update_one(
        {"_id": partner_id},
        {"$set": {"stale": True}, "$inc": {"changes": 1}},
        upsert=True,
        session=session,
    )


class PerformanceRecords:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._records = collection

    async def ensure_indexes(self) -> None:
        await self._records.create_indexes(INDEXES)

    async def stale(
        self, after: str | None, limit: int
    ) -> list[tuple[str, int, PartnerPerformance | None]]:
        """Partners whose leads changed, by id from `after` on: id, change count,
        figures last published."""
        query: Document = {"stale": True}
        if after is not None:
            query["_id"] = {"$gt": after}
        found = await self._records.find(query).sort("_id", ASCENDING).limit(limit).to_list()
        return [
            (
                record["_id"],
                record["changes"],
                PartnerPerformance.model_validate(record["published"])
                if record.get("published")
                else None,
            )
            for record in found
        ]

    async def settle(self, partner_id: str, changes: int, published: PartnerPerformance) -> bool:
        """Record the figures as published; False if more changes came meanwhile."""
        result = await self._records.update_one(
            {"_id": partner_id, "changes": changes},
            {"$set": {"stale": False, "published": published.model_dump(mode="json")}},
        )
        return result.matched_count == 1
