"""The read API: a partner's inbox, one lead, its performance; actions on a lead and
what became of them; the partner's Leads page; health and metrics; the message
contract (AsyncAPI) as a document and as a page.

The partner always comes from the bearer token, never from the path or query.
Every error is an RFC 9457 problem (`application/problem+json`) that never
repeats a submitted value.

One module per area adds its routes, given what they use: `reads`, `actions`,
`operations`, `static`; `auth` says who calls, `problems` answers every error,
`openapi` describes it all. The areas add to the app's own router, not to an
`APIRouter` each: since FastAPI 0.137 `include_router` nests a router in
`api.routes` instead of copying its routes there, and `api.routes` is read as the
flat list of what the service serves (the deploy tests' probe paths).
"""

from typing import Any

from fastapi import FastAPI

from services.lifecycle.adapters.tokens import TokenVerifier
from services.lifecycle.entrypoints.http import openapi
from services.lifecycle.entrypoints.http.actions import add_action_routes
from services.lifecycle.entrypoints.http.auth import partner_authentication
from services.lifecycle.entrypoints.http.operations import Checks, Metrics, add_operation_routes
from services.lifecycle.entrypoints.http.problems import answer_problems
from services.lifecycle.entrypoints.http.reads import ProfileOf, add_read_routes
from services.lifecycle.entrypoints.http.static import add_contract_routes, add_page_routes
from services.lifecycle.service_layer.actions import Actions
from services.lifecycle.service_layer.inbox import Inbox

__all__ = ["create_api"]


def create_api(
    inbox: Inbox,
    verifier: TokenVerifier,
    profile_of: ProfileOf,
    readiness: Checks,
    metrics: Metrics,
    asyncapi: dict[str, Any] | None = None,
    actions: Actions | None = None,
) -> FastAPI:
    """The read API; without `actions` it takes none, without `asyncapi` it serves no
    contract."""
    api = FastAPI(title=openapi.TITLE, version=openapi.VERSION, description=openapi.DESCRIPTION)
    answer_problems(api)
    authenticate = partner_authentication(verifier)
    add_read_routes(api.router, inbox, profile_of, authenticate)
    if actions is not None:
        add_action_routes(api.router, actions, authenticate)
    add_operation_routes(api.router, readiness, metrics)
    if asyncapi is not None:
        add_contract_routes(api.router, asyncapi)
    add_page_routes(api.router)
    openapi.describe(api, with_actions=actions is not None)
    return api
