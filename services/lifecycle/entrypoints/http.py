"""The read API: a partner's inbox, one lead, its performance; health and metrics.

The partner always comes from the bearer token, never from the path or query.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.actions import PARTNER_ROLES
from contracts.events import LeadSnapshot, Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import InboxCounts, LeadDetail, LeadPage, StageCounts
from contracts.performance import PartnerPerformance
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters.tokens import Principal, TokenVerifier, Unauthenticated
from services.lifecycle.domain.lead import Lead
from services.lifecycle.entrypoints.metrics import CONTENT_TYPE
from services.lifecycle.service_layer.inbox import BadCursor, Inbox, InboxFilter

Checks = Callable[[], Awaitable[dict[str, bool]]]
"""Readiness: each dependency's name and whether it answers."""


def create_api(
    inbox: Inbox,
    verifier: TokenVerifier,
    profile_of: Callable[[str], Awaitable[PartnerProfile | None]],
    readiness: Checks,
    metrics: Callable[[], Awaitable[bytes]],
) -> FastAPI:
    api = FastAPI(
        title="Lead lifecycle service: read API",
        version="1.0.0",
        description="A partner's leads as the partner portal shows them. Every /v1 request "
        "carries a bearer token (JWT) naming the partner (`partner_id`) and the role "
        f"(`role`: {', '.join(sorted(PARTNER_ROLES))}).",
    )
    bearer = HTTPBearer(auto_error=False, description="JWT with `partner_id` and `role` claims")

    def partner(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("a bearer token is required")
        try:
            principal = verifier.verify(credentials.credentials)
        except Unauthenticated as refusal:
            raise _unauthorized(str(refusal)) from None
        if principal.role not in PARTNER_ROLES:
            raise HTTPException(403, f"role {principal.role!r} may not read leads")
        return principal

    Caller = Annotated[Principal, Depends(partner)]

    @api.get("/v1/leads", response_model=LeadPage, tags=["inbox"])
    async def list_leads(
        caller: Caller,
        tab: Tab | None = None,
        stage: Stage | None = None,
        hot: bool | None = None,
        expiring_within_days: Annotated[int | None, Query(ge=0, le=366)] = None,
        lead_type: LeadType | None = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
    ) -> LeadPage:
        """The partner's leads, newest first, one page at a time."""
        where = InboxFilter(tab=tab, stage=stage, hot=hot, lead_type=lead_type)
        within = timedelta(days=expiring_within_days) if expiring_within_days is not None else None
        try:
            page = await inbox.page(caller.partner_id, where, within, cursor, limit)
        except BadCursor as bad:
            raise HTTPException(400, str(bad)) from None
        return LeadPage(
            items=[lead.snapshot() for lead in page.leads],
            next_cursor=page.next_cursor.encode() if page.next_cursor else None,
        )

    @api.get("/v1/leads/counts", response_model=InboxCounts, tags=["inbox"])
    async def count_leads(caller: Caller) -> InboxCounts:
        """How many leads each tab holds in each stage: the badges."""
        counts = await inbox.counts(caller.partner_id)
        return InboxCounts.model_validate(
            {
                tab.value: StageCounts(
                    **{stage.value: n for stage, n in by_stage.items()},
                    total=sum(by_stage.values()),
                )
                for tab, by_stage in counts.items()
            }
        )

    @api.get(
        "/v1/leads/{lead_id}",
        response_model=LeadDetail,
        tags=["inbox"],
        responses={404: {"description": "No such lead for this partner"}},
    )
    async def get_lead(caller: Caller, lead_id: str) -> LeadDetail:
        """One lead with its history. Another partner's lead is not found, like a missing one."""
        lead = await inbox.lead(caller.partner_id, lead_id)
        if lead is None:
            raise HTTPException(404, f"partner {caller.partner_id} has no lead {lead_id}")
        return _detail(lead)

    @api.get("/v1/performance", response_model=PartnerPerformance, tags=["performance"])
    async def get_performance(caller: Caller) -> PartnerPerformance:
        """How fast and how well the partner answers its leads, overall and by lead type."""
        return await inbox.performance(caller.partner_id)

    @api.get(
        "/v1/profile",
        response_model=PartnerProfile,
        tags=["profile"],
        responses={404: {"description": "No profile received for this partner yet"}},
    )
    async def get_profile(caller: Caller) -> PartnerProfile:
        """The partner's business profile as the service last received it."""
        found = await profile_of(caller.partner_id)
        if found is None:
            raise HTTPException(404, f"partner {caller.partner_id} has no business profile yet")
        return found

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"])
    async def readyz(response: Response) -> dict[str, bool]:
        """Kafka and MongoDB answer."""
        checks = await readiness()
        if not all(checks.values()):
            response.status_code = 503
        return checks

    @api.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus() -> Response:
        return Response(await metrics(), media_type=CONTENT_TYPE)

    return api


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _detail(lead: Lead) -> LeadDetail:
    snapshot: LeadSnapshot = lead.snapshot()
    return LeadDetail.model_validate(
        {
            **snapshot.model_dump(),
            "version": lead.version,
            "history": [entry.model_dump() for entry in lead.history],
        }
    )
