"""The inbox's read queries on the `leads` collection, each scoped to one partner."""

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from contracts.actions import Deal
from contracts.common import DeclineReason
from contracts.events import Outcome, Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import LeadSort
from contracts.performance import PartnerPerformance
from services.lifecycle.adapters.mongo import Document, from_document
from services.lifecycle.adapters.performance import MongoPerformanceRecords
from services.lifecycle.adapters.tallies import MongoPartnerTallies
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.performance import LeadFacts
from services.lifecycle.service_layer.inbox import InboxFilter, Page, Position, position_of


@dataclass(frozen=True)
class _Order:
    """A list's order: by one time field, then by lead id, both the same way."""

    field: str
    direction: int

    @property
    def keys(self) -> list[tuple[str, int]]:
        return [(self.field, self.direction), ("_id", self.direction)]

    @property
    def past(self) -> str:
        """The operator that selects what comes later in this order."""
        return "$lt" if self.direction == DESCENDING else "$gt"


_ORDERS = {
    LeadSort.NEWEST: _Order("received_at", DESCENDING),
    LeadSort.IDLE: _Order("idle_since", ASCENDING),
}
_NEWEST_FIRST = _ORDERS[LeadSort.NEWEST].keys

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
    IndexModel(
        [("partner_id", ASCENDING), *_ORDERS[LeadSort.IDLE].keys],
        name="inbox_idle_deals",
        partialFilterExpression={"stage": Stage.ACCEPTED.value, "idle_since": {"$exists": True}},
    ),
]

_FACT_FIELDS = {
    "lead_type": 1,
    "received_at": 1,
    "answered_at": 1,
    "outcome": 1,
    "decline_reason": 1,
    "deal": 1,
    "idle_step": 1,
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
        self, partner_id: str, where: InboxFilter, after: Position | None, limit: int
    ) -> Page:
        query = _query(partner_id, where)
        found = await self._listed(query, _ORDERS[where.sort], after, limit + 1)
        leads = [from_document(document) for document in found[:limit]]
        more = len(found) > limit
        return Page(leads, position_of(leads[-1], where.sort) if more else None)

    async def _listed(
        self, query: dict[str, Any], order: _Order, after: Position | None, limit: int
    ) -> list[Document]:
        """Up to `limit` leads in `order`, after the cursor.

        Past the cursor means first its ties (same time, later id in the order),
        then the leads later in time: two range reads on the index, rather than
        one `$or`, which some servers answer with a collection scan."""
        if after is None:
            return await self._sorted(query, order, limit)
        at, lead_id = after.key
        ties = {**query, order.field: at, "_id": {order.past: lead_id}}
        found = await self._sorted(ties, order, limit)
        if len(found) < limit:
            later = {**query, order.field: {order.past: at}}
            found += await self._sorted(later, order, limit - len(found))
        return found

    async def _sorted(self, query: dict[str, Any], order: _Order, limit: int) -> list[Document]:
        return await self._leads.find(query).sort(order.keys).limit(limit).to_list()

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        """From the partner's tallies, kept with its leads: the same cost at any size."""
        counts = await self._tallies.counts(partner_id)
        return {tab_stage(key): n for key, n in counts.items()}

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
        _only_stage(query, Stage.RECEIVED.value)  # only a lead waiting for an answer expires
        query["respond_by"] = {"$lte": where.expiring_by}
    if where.sort is LeadSort.IDLE:
        _only_stage(query, Stage.ACCEPTED.value)  # an idle clock runs on accepted deals only
        # `$exists` as the index's filter says it, so that the index is used.
        query["idle_since"] = {"$exists": True, "$ne": None}
    return query


def _only_stage(query: dict[str, Any], stage: str) -> None:
    """Narrows the query to leads in `stage`: none, when it asks for another one."""
    if query.setdefault("stage", stage) != stage:
        query["stage"] = {"$in": []}


def tab_stage(key: str) -> tuple[Tab, Stage]:
    """A tally's `tab.stage` key as the tab and stage it counts."""
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
        idle=document.get("idle_step") is not None,
    )
