"""The partner figures last computed (`partner_performance`), as the read API serves them."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from contracts.performance import PartnerPerformance

Document = dict[str, Any]


class MongoPerformanceRecords:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._records = database["partner_performance"]

    async def figures(self, partner_id: str) -> PartnerPerformance | None:
        record = await self._records.find_one({"_id": partner_id})
        if record is None or not record.get("figures"):
            return None
        return PartnerPerformance.model_validate(record["figures"])

    async def store(self, figures: PartnerPerformance, computed_at: datetime) -> None:
        stamped = figures.model_copy(update={"computed_at": computed_at})
        await self._records.update_one(
            {"_id": figures.partner_id},
            {"$set": {"figures": stamped.model_dump(mode="json")}},
            upsert=True,
        )
