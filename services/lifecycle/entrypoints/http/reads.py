"""The partner's reads: its inbox (lists, counts, one lead), its performance and
its business profile."""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from contracts.events import LeadSnapshot, Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import InboxCounts, LeadDetail, LeadPage, LeadSort, StageCounts
from contracts.performance import PartnerPerformance
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters.tokens import Principal
from services.lifecycle.domain.lead import Lead
from services.lifecycle.entrypoints.http.auth import Authenticate
from services.lifecycle.entrypoints.http.openapi import ETAG, PARTNER_ERRORS, LeadId, problems
from services.lifecycle.service_layer.inbox import Inbox, InboxFilter

ProfileOf = Callable[[str], Awaitable[PartnerProfile | None]]
"""The partner's business profile as last received, if any."""

_ExpiringWithinDays = Annotated[
    int | None,
    Query(
        ge=0,
        le=366,
        description="Only leads still waiting for an answer due within this many days",
    ),
]
_Sort = Annotated[
    LeadSort,
    Query(
        description="`newest`: newest first. `idle`: the accepted deals only, idle longest "
        "first (by `idle_since`). A cursor continues the order it was handed out in"
    ),
]
_Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page, as handed out (opaque)"),
]


def add_read_routes(
    router: APIRouter, inbox: Inbox, profile_of: ProfileOf, authenticate: Authenticate
) -> None:
    _lead_lists(router, inbox, authenticate)
    _one_lead(router, inbox, authenticate)
    _performance_and_profile(router, inbox, profile_of, authenticate)


def _lead_lists(router: APIRouter, inbox: Inbox, authenticate: Authenticate) -> None:
    @router.get(
        "/v1/leads",
        response_model=LeadPage,
        tags=["inbox"],
        operation_id="listLeads",
        summary="List the partner's leads",
        responses=problems(*PARTNER_ERRORS, 422),
    )
    async def list_leads(
        principal: Annotated[Principal, Depends(authenticate)],
        tab: Annotated[Tab | None, Query(description="Only leads in this tab")] = None,
        stage: Annotated[Stage | None, Query(description="Only leads in this stage")] = None,
        hot: Annotated[
            bool | None, Query(description="Only leads whose contact request is (not) hot")
        ] = None,
        expiring_within_days: _ExpiringWithinDays = None,
        lead_type: Annotated[LeadType | None, Query(description="Only this type of lead")] = None,
        sort: _Sort = LeadSort.NEWEST,
        cursor: _Cursor = None,
        limit: Annotated[int, Query(ge=1, le=100, description="Leads per page")] = 25,
    ) -> LeadPage:
        """The partner's leads, one page at a time: newest first, or its accepted deals
        idle longest first."""
        where = InboxFilter(tab=tab, stage=stage, hot=hot, lead_type=lead_type, sort=sort)
        within = timedelta(days=expiring_within_days) if expiring_within_days is not None else None
        page = await inbox.page(principal.partner_id, where, within, cursor, limit)
        return LeadPage(
            items=[lead.snapshot() for lead in page.leads], next_cursor=page.next_cursor
        )

    @router.get(
        "/v1/leads/counts",
        response_model=InboxCounts,
        tags=["inbox"],
        operation_id="countLeads",
        summary="Count the partner's leads per tab and stage",
        responses=problems(*PARTNER_ERRORS),
    )
    async def count_leads(principal: Annotated[Principal, Depends(authenticate)]) -> InboxCounts:
        """How many leads each tab holds in each stage: the badges."""
        return _inbox_counts(await inbox.counts(principal.partner_id))


def _one_lead(router: APIRouter, inbox: Inbox, authenticate: Authenticate) -> None:
    @router.get(
        "/v1/leads/{lead_id}",
        response_model=LeadDetail,
        tags=["inbox"],
        operation_id="getLead",
        summary="One lead with its history",
        responses={
            200: {"headers": {"ETag": ETAG}},
            **problems(*PARTNER_ERRORS, 404, 422, s404="No such lead for this partner"),
        },
    )
    async def get_lead(
        principal: Annotated[Principal, Depends(authenticate)], lead_id: LeadId, response: Response
    ) -> LeadDetail:
        """One lead with its history. Another partner's lead is not found, like a missing one.
        Its `ETag` is its version: send it back as `If-Match` with an action. A lead
        this partner declined says until when it may take the decline back."""
        lead = await inbox.lead(principal.partner_id, lead_id)
        if lead is None:
            raise HTTPException(404, "this partner has no such lead")
        response.headers["ETag"] = f'"{lead.version}"'
        return _detail(lead, inbox.undo_until(lead))


def _performance_and_profile(
    router: APIRouter, inbox: Inbox, profile_of: ProfileOf, authenticate: Authenticate
) -> None:
    @router.get(
        "/v1/performance",
        response_model=PartnerPerformance,
        tags=["performance"],
        operation_id="getPerformance",
        summary="The partner's responsiveness figures",
        responses=problems(*PARTNER_ERRORS),
    )
    async def get_performance(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> PartnerPerformance:
        """How fast and how well the partner answers its leads, overall and by lead type."""
        return await inbox.performance(principal.partner_id)

    @router.get(
        "/v1/profile",
        response_model=PartnerProfile,
        tags=["profile"],
        operation_id="getProfile",
        summary="The partner's business profile",
        responses=problems(*PARTNER_ERRORS, 404, s404="No profile received for this partner"),
    )
    async def get_profile(principal: Annotated[Principal, Depends(authenticate)]) -> PartnerProfile:
        """The partner's business profile as the service last received it."""
        found = await profile_of(principal.partner_id)
        if found is None:
            raise HTTPException(404, "no business profile received for this partner yet")
        return found


def _inbox_counts(counts: Mapping[Tab, Mapping[Stage, int]]) -> InboxCounts:
    return InboxCounts.model_validate(
        {
            tab.value: StageCounts(
                **{stage.value: n for stage, n in by_stage.items()},
                total=sum(by_stage.values()),
            )
            for tab, by_stage in counts.items()
        }
    )


def _detail(lead: Lead, undo_until: datetime | None) -> LeadDetail:
    snapshot: LeadSnapshot = lead.snapshot()
    return LeadDetail.model_validate(
        {
            **snapshot.model_dump(),
            "version": lead.version,
            "history": [entry.model_dump() for entry in lead.history],
            "undo_until": undo_until,
        }
    )
