"""The read API: a partner's inbox, one lead, its performance; health and metrics;
the message contract (AsyncAPI) as a document and as a page.

The partner always comes from the bearer token, never from the path or query.
Every error is an RFC 9457 problem (`application/problem+json`) that never
repeats a submitted value.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from http import HTTPStatus
from importlib.resources import files
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.actions import PARTNER_ROLES
from contracts.common import ID_PATTERN
from contracts.events import LeadSnapshot, Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import InboxCounts, LeadDetail, LeadPage, StageCounts
from contracts.performance import PartnerPerformance
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters.tokens import Principal, TokenVerifier, Unauthenticated
from services.lifecycle.domain.lead import Lead
from services.lifecycle.entrypoints.metrics import CONTENT_TYPE
from services.lifecycle.service_layer.inbox import BadCursor, Inbox, InboxFilter

log = logging.getLogger("leads.http")

Checks = Callable[[], Awaitable[dict[str, bool]]]
"""Readiness: each dependency's name and whether it answers."""

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5
_WEB = files("services.lifecycle.entrypoints") / "web"


class FieldProblem(BaseModel):
    """One parameter that is not valid: where it is and what is wrong, not its value."""

    location: str = Field(description="`query`, `path` or `header`")
    name: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="URI of the problem type")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong; never a submitted value")
    errors: list[FieldProblem] | None = Field(None, description="Invalid parameters (422 only)")


_DESCRIPTIONS = {
    400: "Two Authorization headers, or a cursor this service did not hand out to this partner",
    401: "No bearer token, or one that cannot be verified or has expired",
    403: "The token's role may not read leads",
    404: "Not found",
    422: "A parameter is not valid",
    503: "A dependency (MongoDB or Kafka) does not answer; retry after a while",
}


def _problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses with the problem body, for these statuses."""
    return {
        status: {
            "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_PARTNER_ERRORS = (400, 401, 403, 503)
_PUBLIC: dict[str, Any] = {"security": []}
_TAGS = [
    {"name": "inbox", "description": "The partner's leads: lists, counts, one lead"},
    {"name": "performance", "description": "How fast and how well the partner answers"},
    {"name": "profile", "description": "The partner's business profile"},
    {"name": "operations", "description": "Health, readiness and metrics (no token)"},
    {"name": "contract", "description": "The Kafka message contract, AsyncAPI 3.0 (no token)"},
]
_SERVERS: list[dict[str, Any]] = [
    {"url": "http://127.0.0.1:8080", "description": "`leads dev` / `leads serve` on this machine"},
    {
        "url": "https://{host}",
        "description": "A deployment behind TLS",
        "variables": {"host": {"default": "leads.internal", "description": "its host name"}},
    },
]


def create_api(
    inbox: Inbox,
    verifier: TokenVerifier,
    profile_of: Callable[[str], Awaitable[PartnerProfile | None]],
    readiness: Checks,
    metrics: Callable[[], Awaitable[bytes]],
    asyncapi: dict[str, Any] | None = None,
) -> FastAPI:
    api = FastAPI(
        title="Lead lifecycle service: read API",
        version="1.0.0",
        description="A partner's leads as the partner portal shows them. Every /v1 request "
        "carries a bearer token (JWT) naming the partner (`partner_id`) and the role "
        f"(`role`: {', '.join(sorted(PARTNER_ROLES))}). Errors are RFC 9457 problem details.",
    )
    _answer_problems(api)
    bearer = HTTPBearer(
        auto_error=False,
        bearerFormat="JWT",
        scheme_name="bearer",
        description="JWT with `partner_id` and `role` claims",
    )

    def partner(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if len(request.headers.getlist("authorization")) > 1:
            raise HTTPException(400, "send one Authorization header, not several")
        if credentials is None:
            raise _unauthorized("a bearer token is required")
        try:
            principal = verifier.verify(credentials.credentials)
        except Unauthenticated as refusal:
            raise _unauthorized(str(refusal)) from None
        if principal.role not in PARTNER_ROLES:
            raise HTTPException(403, "the token's role may not read leads")
        return principal

    Caller = Annotated[Principal, Depends(partner)]

    @api.get(
        "/v1/leads",
        response_model=LeadPage,
        tags=["inbox"],
        operation_id="listLeads",
        summary="List the partner's leads",
        responses=_problems(*_PARTNER_ERRORS, 422),
    )
    async def list_leads(
        caller: Caller,
        tab: Annotated[Tab | None, Query(description="Only leads in this tab")] = None,
        stage: Annotated[Stage | None, Query(description="Only leads in this stage")] = None,
        hot: Annotated[
            bool | None, Query(description="Only leads whose contact request is (not) hot")
        ] = None,
        expiring_within_days: Annotated[
            int | None,
            Query(
                ge=0,
                le=366,
                description="Only leads still waiting for an answer due within this many days",
            ),
        ] = None,
        lead_type: Annotated[LeadType | None, Query(description="Only this type of lead")] = None,
        cursor: Annotated[
            str | None,
            Query(
                max_length=512,
                description="`next_cursor` of the previous page, as handed out (opaque)",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100, description="Leads per page")] = 25,
    ) -> LeadPage:
        """The partner's leads, newest first, one page at a time."""
        where = InboxFilter(tab=tab, stage=stage, hot=hot, lead_type=lead_type)
        within = timedelta(days=expiring_within_days) if expiring_within_days is not None else None
        try:
            page = await inbox.page(caller.partner_id, where, within, cursor, limit)
        except BadCursor as bad:
            raise HTTPException(400, str(bad)) from None
        return LeadPage(
            items=[lead.snapshot() for lead in page.leads], next_cursor=page.next_cursor
        )

    @api.get(
        "/v1/leads/counts",
        response_model=InboxCounts,
        tags=["inbox"],
        operation_id="countLeads",
        summary="Count the partner's leads per tab and stage",
        responses=_problems(*_PARTNER_ERRORS),
    )
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
        operation_id="getLead",
        summary="One lead with its history",
        responses=_problems(*_PARTNER_ERRORS, 404, 422, s404="No such lead for this partner"),
    )
    async def get_lead(
        caller: Caller,
        lead_id: Annotated[
            str,
            Path(
                pattern=ID_PATTERN,
                min_length=1,
                max_length=64,
                description="The lead's id",
            ),
        ],
    ) -> LeadDetail:
        """One lead with its history. Another partner's lead is not found, like a missing one."""
        lead = await inbox.lead(caller.partner_id, lead_id)
        if lead is None:
            raise HTTPException(404, "this partner has no such lead")
        return _detail(lead)

    @api.get(
        "/v1/performance",
        response_model=PartnerPerformance,
        tags=["performance"],
        operation_id="getPerformance",
        summary="The partner's responsiveness figures",
        responses=_problems(*_PARTNER_ERRORS),
    )
    async def get_performance(caller: Caller) -> PartnerPerformance:
        """How fast and how well the partner answers its leads, overall and by lead type."""
        return await inbox.performance(caller.partner_id)

    @api.get(
        "/v1/profile",
        response_model=PartnerProfile,
        tags=["profile"],
        operation_id="getProfile",
        summary="The partner's business profile",
        responses=_problems(*_PARTNER_ERRORS, 404, s404="No profile received for this partner"),
    )
    async def get_profile(caller: Caller) -> PartnerProfile:
        """The partner's business profile as the service last received it."""
        found = await profile_of(caller.partner_id)
        if found is None:
            raise HTTPException(404, "no business profile received for this partner yet")
        return found

    _operations(api, readiness, metrics)
    if asyncapi is not None:
        _contract(api, asyncapi)
    _document(api)
    return api


def _operations(api: FastAPI, readiness: Checks, metrics: Callable[[], Awaitable[bytes]]) -> None:
    @api.get(
        "/healthz",
        tags=["operations"],
        operation_id="getHealth",
        summary="Liveness",
        openapi_extra=_PUBLIC,
    )
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @api.get(
        "/readyz",
        tags=["operations"],
        operation_id="getReadiness",
        summary="Readiness",
        openapi_extra=_PUBLIC,
        responses={503: {"description": "Kafka or MongoDB does not answer", "model": Readiness}},
    )
    async def readyz(response: Response) -> Readiness:
        """Kafka and MongoDB answer."""
        checks = await readiness()
        if not all(checks.values()):
            response.status_code = 503
        return Readiness.model_validate(checks)

    @api.get(
        "/metrics",
        tags=["operations"],
        operation_id="getMetrics",
        summary="Prometheus metrics",
        openapi_extra=_PUBLIC,
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_problems(503, s503="MongoDB does not answer"),
        },
    )
    async def prometheus() -> Response:
        """Messages handled and refused, handling time, outbox backlog."""
        return Response(await metrics(), media_type=CONTENT_TYPE)


class Readiness(BaseModel):
    kafka: bool
    mongodb: bool


def _contract(api: FastAPI, asyncapi: dict[str, Any]) -> None:
    """The AsyncAPI document, and a page rendering it with the official AsyncAPI
    component, served from the package so that it works offline."""
    page = (_WEB / "asyncapi.html").read_text().replace("{{TITLE}}", asyncapi["info"]["title"])
    assets = {
        name: (media, (_WEB / "asyncapi" / name).read_bytes())
        for name, media in (("standalone.js", "text/javascript"), ("default.min.css", "text/css"))
    }

    @api.get(
        "/asyncapi.json",
        tags=["contract"],
        operation_id="getAsyncApi",
        summary="The AsyncAPI 3.0 document",
        openapi_extra=_PUBLIC,
    )
    async def asyncapi_document() -> dict[str, Any]:
        """What the service consumes and publishes on Kafka: channels, messages, headers."""
        return asyncapi

    @api.get(
        "/asyncapi",
        tags=["contract"],
        operation_id="getAsyncApiPage",
        summary="The AsyncAPI document as a page",
        openapi_extra=_PUBLIC,
        response_class=HTMLResponse,
    )
    async def asyncapi_page() -> HTMLResponse:
        """The AsyncAPI document rendered for reading in a browser (no external scripts)."""
        return HTMLResponse(page)

    @api.get("/asyncapi/{asset}", include_in_schema=False)
    async def asyncapi_asset(asset: str) -> Response:
        if asset not in assets:
            raise HTTPException(404, "no such file")
        media, content = assets[asset]
        return Response(content, media_type=media, headers={"Cache-Control": "max-age=3600"})


def _document(api: FastAPI) -> None:
    """The OpenAPI document: servers, license, tags, and the problem schema."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
                tags=_TAGS,
                servers=_SERVERS,
                license_info={"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _answer_problems(api: FastAPI) -> None:
    """Every error the API answers, its own or the framework's, as a problem."""

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else None
        return problem(error.status_code, detail, error.headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        fields = [_field(e) for e in error.errors()]
        return problem(422, "a parameter is not valid: see `errors`", None, fields)

    @api.exception_handler(Exception)
    async def unforeseen(request: Request, error: Exception) -> Response:
        # A bug: answered as a problem too; Starlette re-raises it so that it is logged.
        return problem(500, "an unforeseen error; it has been logged")

    @api.exception_handler(ConnectionFailure)
    async def unavailable(request: Request, error: ConnectionFailure) -> Response:
        log.warning("read API: MongoDB unavailable", extra={"error_class": type(error).__name__})
        return problem(
            503, "the database does not answer; retry later", {"Retry-After": str(RETRY_AFTER_S)}
        )


def _field(error: Any) -> FieldProblem:
    """Where the invalid parameter is and what is wrong, without the submitted value."""
    location, *names = [str(part) for part in error.get("loc", ())] or ["request"]
    return FieldProblem(
        location=location, name=".".join(names), message=str(error.get("msg", "invalid"))
    )


def problem(
    status: int,
    detail: str | None,
    headers: Mapping[str, str] | None = None,
    errors: list[FieldProblem] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = Problem(title=phrase, status=status, detail=detail or phrase, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status, headers=headers, media_type=PROBLEM
    )


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
