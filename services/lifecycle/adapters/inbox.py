"""The inbox's read queries on the `leads` collection, each scoped to one partner."""

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from contracts.actions import Deal
from contracts.common import DeclineReason
from contracts.events import Outcome, Stage, Tab
from contracts.inbound import LeadType
from contracts.performance import PartnerPerformance
from services.lifecycle.adapters.mongo import Document, from_document
from services.lifecycle.adapters.performance import MongoPerformanceRecords
from services.lifecycle.adapters.tallies import MongoPartnerTallies
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.performance import LeadFacts
from services.lifecycle.service_layer.inbox import Cursor, InboxFilter, Page

_NEWEST_FIRST = [("received_at", DESCENDING), ("_id", DESCENDING)]

INDEXES = [
    IndexModel([("partner_id", ASCENDING), *_NEWEST_FIRST], name="inbox_all"),
    IndexModel(
        [("partner_id", ASCENDING), ("tab", ASCENDING), ("stage", ASCENDING), *_NEWEST_FIRST],
        name="inbox_by_tab",
    ),
    IndexModel(
        [("partner_id", ASCENDING), ("favorite", ASCENDING), *_NEWEST_FIRST],
        name="inbox_favorites",
        partialFilterExpression={"favorite": True},
    ),
]

_FACT_FIELDS = {
    "lead_type": 1,
    "received_at": 1,
    "answered_at": 1,
    "outcome": 1,
    "decline_reason": 1,
    "deal": 1,
}


class MongoInbox:
    """The `InboxReader` port."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._leads = database["leads"]
        self._tallies = MongoPartnerTallies(database)
        self._performance = MongoPerformanceRecords(database)

    async def ensure_indexes(self) -> None:
        await self._leads.create_indexes(INDEXES)

    async def page(
        self, partner_id: str, where: InboxFilter, after: Cursor | None, limit: int
    ) -> Page:
        query = _query(partner_id, where)
        found = await self._newest(query, after, limit + 1)
        leads = [from_document(document) for document in found[:limit]]
        more = len(found) > limit
        last = leads[-1] if more else None
        return Page(leads, Cursor(last.received_at, last.lead_id) if last else None)

    async def _newest(
        self, query: dict[str, Any], after: Cursor | None, limit: int
    ) -> list[Document]:
        """Up to `limit` leads, newest first, after the cursor.

        Past the cursor means first its ties (same `received_at`, lower id), then
        the older leads: two range reads on the index, rather than one `$or`,
        which some servers answer with a collection scan."""
        if after is None:
            return await self._sorted(query, limit)
        ties = {**query, "received_at": after.received_at, "_id": {"$lt": after.lead_id}}
        found = await self._sorted(ties, limit)
        if len(found) < limit:
            older = {**query, "received_at": {"$lt": after.received_at}}
            found += await self._sorted(older, limit - len(found))
        return found

    async def _sorted(self, query: dict[str, Any], limit: int) -> list[Document]:
        return await self._leads.find(query).sort(_NEWEST_FIRST).limit(limit).to_list()

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        """From the partner's tallies, kept with its leads: the same cost at any size."""
        counts = await self._tallies.counts(partner_id)
        return {_tab_stage(key): n for key, n in counts.items()}

    async def performance(self, partner_id: str) -> PartnerPerformance | None:
        return await self._performance.figures(partner_id)

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None:
        document = await self._leads.find_one({"_id": lead_id, "partner_id": partner_id})
        return from_document(document) if document else None

    async def facts(self, partner_id: str) -> list[LeadFacts]:
        cursor = self._leads.find({"partner_id": partner_id}, _FACT_FIELDS)
        return [_facts(document) async for document in cursor]


def _query(partner_id: str, where: InboxFilter) -> dict[str, Any]:
    query: dict[str, Any] = {"partner_id": partner_id}
    if where.tab is Tab.FAVORITES:
        query["favorite"] = True
    elif where.tab is not None:
        query["tab"] = where.tab.value
    if where.stage is not None:
        query["stage"] = where.stage.value
    if where.hot is not None:
        query["hot"] = where.hot
    if where.lead_type is not None:
        query["lead_type"] = where.lead_type.value
    if where.expiring_by is not None:
        # Only a lead still waiting for an answer can expire.
        if query.setdefault("stage", Stage.RECEIVED.value) != Stage.RECEIVED.value:
            query["stage"] = {"$in": []}
        query["respond_by"] = {"$lte": where.expiring_by}
    return query


def _tab_stage(key: str) -> tuple[Tab, Stage]:
    tab, stage = key.split(".")
    return Tab(tab), Stage(stage)


def _facts(document: Document) -> LeadFacts:
    deal = Deal.model_validate(document["deal"]) if document.get("deal") else None
    return LeadFacts(
        lead_type=LeadType(document["lead_type"]),
        received_at=document["received_at"],
        answered_at=document.get("answered_at"),
        outcome=Outcome(document["outcome"]) if document.get("outcome") else None,
        decline_reason=DeclineReason(document["decline_reason"])
        if document.get("decline_reason")
        else None,
        deal_value=deal.value if deal else None,
    )
