"""The `partner_tallies` collection: per partner and input partition, how many of
its leads count in each inbox badge, and how often its leads changed.

Each batch moves the tally of its own input partition, in its transaction: the
counts stay exact, and batches of different partitions never write the same
document. A partner's badges are the sum of its few tallies; its performance
figures are due again while one of them is marked stale.
"""

from collections import Counter
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.lifecycle.service_layer.ports import Change

Document = dict[str, Any]

INDEXES = [
    IndexModel([("partner_id", ASCENDING)], name="by_partner"),
    IndexModel(
        [("stale", ASCENDING), ("partner_id", ASCENDING)],
        name="stale_partners",
        partialFilterExpression={"stale": True},
    ),
]


def writes(change: Change) -> list[UpdateOne]:
    """Move the tallies of the batch's partition, one document per partner."""
    return [
        UpdateOne(
            {"_id": f"{partner_id}|{change.slot}"},
            {
                "$inc": {"changes": 1, **{f"counts.{k}": n for k, n in moves.items() if n}},
                "$set": {"partner_id": partner_id, "stale": True},
            },
            upsert=True,
        )
        for partner_id, moves in sorted(change.tallies.items())
    ]


class MongoPartnerTallies:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._tallies = database["partner_tallies"]

    async def ensure_indexes(self) -> None:
        await self._tallies.create_indexes(INDEXES)

    async def counts(self, partner_id: str) -> Counter[str]:
        """The partner's badge counts, `tab.stage` -> leads."""
        total: Counter[str] = Counter()
        async for tally in self._tallies.find({"partner_id": partner_id}, {"counts": 1}):
            for tab, stages in tally.get("counts", {}).items():
                for stage, n in stages.items():
                    total[f"{tab}.{stage}"] += n
        return total

    async def stale(self, after: str | None, limit: int) -> list[tuple[str, dict[str, int]]]:
        """Up to `limit` partners whose leads changed, by id after `after`: each with
        its stale tallies and their change counts."""
        query: Document = {"stale": True}
        if after is not None:
            query["partner_id"] = {"$gt": after}
        found: dict[str, dict[str, int]] = {}
        cursor = self._tallies.find(query, {"partner_id": 1, "changes": 1}).sort(
            "partner_id", ASCENDING
        )
        async for tally in cursor:
            partner_id = tally["partner_id"]
            if partner_id not in found and len(found) == limit:
                break
            found.setdefault(partner_id, {})[tally["_id"]] = tally["changes"]
        return list(found.items())

    async def settle(self, seen: dict[str, int]) -> None:
        """No longer stale, unless a tally changed again since it was seen."""
        operations = [
            UpdateOne({"_id": tally_id, "changes": changes}, {"$set": {"stale": False}})
            for tally_id, changes in seen.items()
        ]
        if operations:
            await self._tallies.bulk_write(operations, ordered=False)
