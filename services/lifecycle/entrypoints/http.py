"""The read API: a partner's inbox, one lead, its performance; actions on a lead and
what became of them; the partner's Leads page; health and metrics; the message
contract (AsyncAPI) as a document and as a page.

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
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.action_status import ActionAccepted, ActionStatus
from contracts.actions import PARTNER_ACTION, PARTNER_ROLES
from contracts.common import ID_PATTERN, Id
from contracts.events import LeadSnapshot, Stage, Tab
from contracts.inbound import LeadType
from contracts.inbox import InboxCounts, LeadDetail, LeadPage, StageCounts
from contracts.performance import PartnerPerformance
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters.tokens import Principal, TokenVerifier, Unauthenticated
from services.lifecycle.domain.lead import Lead
from services.lifecycle.entrypoints.metrics import CONTENT_TYPE
from services.lifecycle.service_layer.actions import (
    IDEMPOTENCY_KEY,
    SET_BY_THE_SERVICE,
    Actions,
    BadRequest,
    Caller,
    InvalidAction,
    KeyReused,
    Unavailable,
)
from services.lifecycle.service_layer.inbox import BadCursor, Inbox, InboxFilter

log = logging.getLogger("leads.http")

Checks = Callable[[], Awaitable[dict[str, bool]]]
"""Readiness: each dependency's name and whether it answers."""

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5
_WEB = files("services.lifecycle.entrypoints") / "web"


class FieldProblem(BaseModel):
    """One parameter that is not valid: where it is and what is wrong, not its value."""

    location: str = Field(description="`query`, `path`, `header` or `body`")
    name: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="URI of the problem type")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong; never a submitted value")
    errors: list[FieldProblem] | None = Field(
        None, description="Invalid parameters or body fields (422 only)"
    )


_DESCRIPTIONS = {
    400: "Two Authorization headers, or a cursor this service did not hand out to this partner",
    401: "No bearer token, or one that cannot be verified or has expired",
    403: "The token's role may not read leads",
    404: "Not found",
    413: "The body is larger than any action can be",
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
    {
        "name": "actions",
        "description": "Act on a lead (published to leads.partner-actions) and see what "
        "became of the action",
    },
    {"name": "performance", "description": "How fast and how well the partner answers"},
    {"name": "profile", "description": "The partner's business profile"},
    {"name": "operations", "description": "Health, readiness and metrics (no token)"},
    {"name": "contract", "description": "The Kafka message contract, AsyncAPI 3.0 (no token)"},
    {"name": "page", "description": "The partner's Leads page (signs in with a bearer token)"},
]
_SERVERS: list[dict[str, Any]] = [
    {"url": "http://127.0.0.1:8080", "description": "`leads dev` / `leads serve` on this machine"},
    {
        "url": "https://{host}",
        "description": "A deployment behind TLS",
        "variables": {"host": {"default": "leads.internal", "description": "its host name"}},
    },
]


LeadId = Annotated[
    str, Path(pattern=ID_PATTERN, min_length=1, max_length=64, description="The lead's id")
]


def create_api(
    inbox: Inbox,
    verifier: TokenVerifier,
    profile_of: Callable[[str], Awaitable[PartnerProfile | None]],
    readiness: Checks,
    metrics: Callable[[], Awaitable[bytes]],
    asyncapi: dict[str, Any] | None = None,
    actions: Actions | None = None,
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
        responses={
            200: {"headers": {"ETag": _ETAG}},
            **_problems(*_PARTNER_ERRORS, 404, 422, s404="No such lead for this partner"),
        },
    )
    async def get_lead(caller: Caller, lead_id: LeadId, response: Response) -> LeadDetail:
        """One lead with its history. Another partner's lead is not found, like a missing one.
        Its `ETag` is its version: send it back as `If-Match` with an action."""
        lead = await inbox.lead(caller.partner_id, lead_id)
        if lead is None:
            raise HTTPException(404, "this partner has no such lead")
        response.headers["ETag"] = f'"{lead.version}"'
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

    if actions is not None:
        _action_routes(api, actions, partner)
    _operations(api, readiness, metrics)
    if asyncapi is not None:
        _contract(api, asyncapi)
    _page(api)
    _document(api, _ACTION_BODIES if actions is not None else {})
    return api


_ETAG = {
    "description": 'The lead\'s version, e.g. `"7"`: send it as `If-Match` with an action',
    "schema": {"type": "string"},
}
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}
_REF = "#/components/schemas/"
MAX_ACTION_BODY = 64 * 1024
"""Bytes: larger than any valid action (notes ≤ 4000 characters, ≤ 50 contacts)."""
_USER: TypeAdapter[str] = TypeAdapter(Id)


def _action_bodies() -> tuple[dict[str, Any], dict[str, Any]]:
    """The body of `actOnLead` and its variants: the contract's partner actions less
    the fields the service sets, which a body may not name (`false`)."""
    schema = PARTNER_ACTION.json_schema(ref_template="#/$defs/{model}")
    defs = schema["$defs"]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    variants, mapping = {}, {}
    for choice in schema["oneOf"]:
        name = choice["$ref"].removeprefix("#/$defs/")
        variant = inline(defs[name])
        properties = {
            field: rule
            for field, rule in variant["properties"].items()
            if field not in SET_BY_THE_SERVICE
        }
        tag = properties["action"]["const"]
        variant["properties"] = {**properties, **dict.fromkeys(SET_BY_THE_SERVICE, False)}
        variant["required"] = [f for f in variant["required"] if f not in SET_BY_THE_SERVICE]
        variant["title"] = f"{name}Body"
        variant["description"] = f"The body of a `{tag}` action"
        variants[f"{name}Body"] = variant
        mapping[tag] = f"{_REF}{name}Body"
    body = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "action", "mapping": mapping},
    }
    return body, variants


_ACTION_BODY, _ACTION_BODIES = _action_bodies()


def _action_routes(api: FastAPI, actions: Actions, partner: Callable[..., Principal]) -> None:
    Caller_ = Annotated[Principal, Depends(partner)]

    @api.post(
        "/v1/leads/{lead_id}/actions",
        status_code=202,
        response_model=ActionAccepted,
        tags=["actions"],
        operation_id="actOnLead",
        summary="Act on a lead: accept, decline, update, add contacts, won, lost, (un)favorite",
        responses={
            202: {
                "description": "Published to leads.partner-actions; the lifecycle rules "
                "decide it next: follow `Location`",
                "headers": {
                    "Location": {
                        "description": "`/v1/actions/{message_id}`: what became of it",
                        "schema": {"type": "string"},
                    }
                },
            },
            **_problems(
                400,
                401,
                403,
                413,
                422,
                s400="No or an unusable Idempotency-Key or If-Match header, or two "
                "Authorization headers",
                s403="The token's role may not act on leads, or it names no user (`sub`)",
                s422="The body is not a contract action (see `errors`), or the "
                "Idempotency-Key was used for another request",
            ),
            503: {
                **_problems(503)[503],
                "description": "Kafka did not take the action; retry with the same Idempotency-Key",
                "headers": {"Retry-After": _RETRY_AFTER},
            },
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "Names this action: a retry with the same key is the "
                    "same action. The action's message_id is `<partner_id>:<key>`.",
                    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
                },
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "The lead's `ETag` as read: the action is refused "
                    "`stale_version` if the lead has moved on since",
                    "schema": {"type": "string", "pattern": r'^"[1-9][0-9]{0,17}"$'},
                },
            ],
            "requestBody": {
                "required": True,
                "description": "A partner action of the message contract without the "
                "fields the service sets: partner and actor come from the token, lead_id "
                "from the path, message_id from Idempotency-Key, expected_version from "
                "If-Match. A body naming any of them is refused.",
                "content": {"application/json": {"schema": _ACTION_BODY}},
            },
        },
    )
    async def act_on_lead(
        request: Request, response: Response, caller: Caller_, lead_id: LeadId
    ) -> ActionAccepted | Response:
        """Publishes the action to leads.partner-actions (key: the lead id) once Kafka
        has it (acks=all), and answers at once; the lifecycle rules decide it after."""
        if any(len(request.headers.getlist(h)) > 1 for h in ("idempotency-key", "if-match")):
            raise HTTPException(400, "send one Idempotency-Key and at most one If-Match header")
        body = await request.body()
        if len(body) > MAX_ACTION_BODY:
            raise HTTPException(413, f"an action's body is at most {MAX_ACTION_BODY} bytes")
        try:
            message_id = await actions.submit(
                _acting(caller),
                lead_id,
                request.headers.get("idempotency-key"),
                request.headers.get("if-match"),
                body,
            )
        except BadRequest as bad:
            raise HTTPException(400, str(bad)) from None
        except InvalidAction as invalid:
            fields = [FieldProblem(location="body", name=n, message=m) for n, m in invalid.problems]
            return problem(422, str(invalid), None, fields)
        except KeyReused as reused:
            raise HTTPException(422, str(reused)) from None
        except Unavailable as unavailable:
            raise HTTPException(
                503,
                f"{unavailable}; retry with the same Idempotency-Key",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        response.headers["Location"] = f"/v1/actions/{message_id}"
        return ActionAccepted(message_id=message_id)

    @api.get(
        "/v1/actions/{message_id}",
        response_model=ActionStatus,
        tags=["actions"],
        operation_id="getAction",
        summary="What became of an action: pending, applied or rejected",
        responses=_problems(
            *_PARTNER_ERRORS, 404, 422, s404="This partner sent no action with this id"
        ),
    )
    async def get_action(
        caller: Caller_,
        message_id: Annotated[
            str,
            Path(
                pattern=ID_PATTERN,
                min_length=1,
                max_length=128,
                description="The action's message_id, as `actOnLead` answered it",
            ),
        ],
    ) -> ActionStatus:
        """The action's status, for the partner that sent it only: anyone else gets 404,
        exactly like an unknown id."""
        found = await actions.status(caller.partner_id, message_id)
        if found is None:
            raise HTTPException(404, "this partner sent no such action")
        return found


def _acting(principal: Principal) -> Caller:
    """The actor of an action: the token's user (`sub`), in the token's role."""
    try:
        user_id = _USER.validate_python(principal.subject, strict=True)
    except ValidationError:
        raise HTTPException(
            403, "the token names no user (`sub`: 1..64 of [A-Za-z0-9._:-]) who may act"
        ) from None
    return Caller(principal.partner_id, user_id, principal.role)


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

    _files(api, "/asyncapi/{asset}", assets, "max-age=3600")


def _files(
    api: FastAPI, path: str, assets: Mapping[str, tuple[str, bytes]], cache_control: str
) -> None:
    """Serves these files (name: media type and content) at `path`, out of the OpenAPI
    document; any other name is 404."""

    @api.get(path, include_in_schema=False)
    async def asset_file(asset: str) -> Response:
        if asset not in assets:
            raise HTTPException(404, "no such file")
        media, content = assets[asset]
        return Response(content, media_type=media, headers={"Cache-Control": cache_control})


_PAGE_ASSETS = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_PAGE_HEADERS = {
    # Scripts and styles from this origin only; the page talks to this API only.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(api: FastAPI) -> None:
    """The partner's Leads page: static files shipped in the package, no build step."""
    folder = _WEB / "leads"
    page = (folder / "index.html").read_bytes()
    assets = {
        item.name: (_PAGE_ASSETS[suffix], item.read_bytes())
        for item in folder.iterdir()
        if (suffix := "." + item.name.rpartition(".")[2]) in _PAGE_ASSETS
    }

    @api.get(
        "/",
        tags=["page"],
        operation_id="getLeadsPage",
        summary="The partner's Leads page",
        openapi_extra=_PUBLIC,
        response_class=HTMLResponse,
    )
    async def leads_page() -> HTMLResponse:
        """Tabs, filters, a lead's detail and the actions its stage allows. Signs in with
        a bearer token passed in the URL fragment (`/#token=...`), kept in sessionStorage."""
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    _files(api, "/leads/{asset}", assets, "no-cache")


def _document(api: FastAPI, bodies: dict[str, Any]) -> None:
    """The OpenAPI document: servers, license, tags, the problem schema and the
    action bodies."""

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
            schemas.update(bodies)
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
