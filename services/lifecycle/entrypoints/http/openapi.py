"""How the read API describes itself: its title, tags and servers, the problem
responses of each operation, the headers and bodies FastAPI cannot infer, and the
document that puts them together."""

from typing import Annotated, Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi

from contracts.actions import PARTNER_ACTION, PARTNER_ROLES
from contracts.common import ID_PATTERN
from services.lifecycle.entrypoints.http.problems import PROBLEM, Problem
from services.lifecycle.service_layer.actions import IDEMPOTENCY_KEY, SET_BY_THE_SERVICE

TITLE = "Lead lifecycle service: read API"
VERSION = "1.0.0"
DESCRIPTION = (
    "A partner's leads as the partner portal shows them. Every /v1 request "
    "carries a bearer token (JWT) naming the partner (`partner_id`) and the role "
    f"(`role`: {', '.join(sorted(PARTNER_ROLES))}). Errors are RFC 9457 problem details."
)
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
_REF = "#/components/schemas/"

PUBLIC: dict[str, Any] = {"security": []}
"""`openapi_extra` of an operation that takes no token."""

PARTNER_ERRORS = (400, 401, 403, 503)
"""What any operation that takes the partner's token may answer."""

_DESCRIPTIONS = {
    400: "Two Authorization headers, or a cursor this service did not hand out to this partner",
    401: "No bearer token, or one that cannot be verified or has expired",
    403: "The token's role may not read leads",
    404: "Not found",
    413: "The body is larger than any action can be",
    422: "A parameter is not valid",
    503: "A dependency (MongoDB or Kafka) does not answer; retry after a while",
}


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses with the problem body, for these statuses; `s404="..."`
    describes a 404 in this operation's own words."""
    return {
        status: {
            "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
            "content": {PROBLEM: {"schema": {"$ref": f"{_REF}Problem"}}},
        }
        for status in statuses
    }


LeadId = Annotated[
    str, Path(pattern=ID_PATTERN, min_length=1, max_length=64, description="The lead's id")
]
"""The lead in the path, for reads and actions alike."""

ETAG = {
    "description": 'The lead\'s version, e.g. `"7"`: send it as `If-Match` with an action',
    "schema": {"type": "string"},
}
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}


def act_on_lead_responses() -> dict[int | str, dict[str, Any]]:
    """What `actOnLead` answers: accepted with where to follow it, or a problem."""
    return {
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
        **problems(
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
            **problems(503)[503],
            "description": "Kafka did not take the action; retry with the same Idempotency-Key",
            "headers": {"Retry-After": _RETRY_AFTER},
        },
    }


def act_on_lead_request() -> dict[str, Any]:
    """The headers and body of `actOnLead`, which reads them itself (raw, to check
    them against the contract): FastAPI cannot infer them."""
    return {
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
    }


def _action_bodies() -> tuple[dict[str, Any], dict[str, Any]]:
    """The body of `actOnLead` and its variants: the contract's partner actions less
    the fields the service sets, which a body may not name (`false`)."""
    schema = PARTNER_ACTION.json_schema(ref_template="#/$defs/{model}")
    defs = schema["$defs"]
    variants, mapping = {}, {}
    for choice in schema["oneOf"]:
        name = choice["$ref"].removeprefix("#/$defs/")
        variant = _inlined(defs[name], defs)
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


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every `#/$defs/` reference replaced by its definition."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(defs[node["$ref"].removeprefix("#/$defs/")], defs)
        return {key: _inlined(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(value, defs) for value in node]
    return node


_ACTION_BODY, _ACTION_BODIES = _action_bodies()


def describe(api: FastAPI, with_actions: bool) -> None:
    """The OpenAPI document: servers, license, tags, the problem schema and, with
    the actions, their bodies."""
    bodies = _ACTION_BODIES if with_actions else {}

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
            problem = Problem.model_json_schema(ref_template=_REF + "{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas["Problem"] = problem
            schemas.update(bodies)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
