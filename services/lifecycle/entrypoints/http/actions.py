"""Partner actions over HTTP: publish an action on a lead, and see what became of it.
The service layer's errors (a bad header, a body that is not a contract action, a
reused key, Kafka away) are answered by their problem handlers."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from contracts.action_status import ActionAccepted, ActionStatus
from contracts.common import ID_PATTERN
from services.lifecycle.adapters.tokens import Principal
from services.lifecycle.entrypoints.http.auth import Authenticate, acting_caller
from services.lifecycle.entrypoints.http.openapi import (
    PARTNER_ERRORS,
    LeadId,
    act_on_lead_request,
    act_on_lead_responses,
    problems,
)
from services.lifecycle.service_layer.actions import Actions

MAX_ACTION_BODY = 64 * 1024
"""Bytes: larger than any valid action (notes ≤ 4000 characters, ≤ 50 contacts)."""

_MessageId = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        min_length=1,
        max_length=128,
        description="The action's message_id, as `actOnLead` answered it",
    ),
]


def add_action_routes(router: APIRouter, actions: Actions, authenticate: Authenticate) -> None:
    _act_on_lead(router, actions, authenticate)
    _action_status(router, actions, authenticate)


def _act_on_lead(router: APIRouter, actions: Actions, authenticate: Authenticate) -> None:
    @router.post(
        "/v1/leads/{lead_id}/actions",
        status_code=202,
        response_model=ActionAccepted,
        tags=["actions"],
        operation_id="actOnLead",
        summary="Act on a lead: accept, decline, update, add contacts, won, lost, (un)favorite",
        responses=act_on_lead_responses(),
        openapi_extra=act_on_lead_request(),
    )
    async def act_on_lead(
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(authenticate)],
        lead_id: LeadId,
    ) -> ActionAccepted:
        """Publishes the action to leads.partner-actions (key: the lead id) once Kafka
        has it (acks=all), and answers at once; the lifecycle rules decide it after."""
        if any(len(request.headers.getlist(h)) > 1 for h in ("idempotency-key", "if-match")):
            raise HTTPException(400, "send one Idempotency-Key and at most one If-Match header")
        body = await request.body()
        if len(body) > MAX_ACTION_BODY:
            raise HTTPException(413, f"an action's body is at most {MAX_ACTION_BODY} bytes")
        message_id = await actions.submit(
            acting_caller(principal),
            lead_id,
            request.headers.get("idempotency-key"),
            request.headers.get("if-match"),
            body,
        )
        response.headers["Location"] = f"/v1/actions/{message_id}"
        return ActionAccepted(message_id=message_id)


def _action_status(router: APIRouter, actions: Actions, authenticate: Authenticate) -> None:
    @router.get(
        "/v1/actions/{message_id}",
        response_model=ActionStatus,
        tags=["actions"],
        operation_id="getAction",
        summary="What became of an action: pending, applied or rejected",
        responses=problems(
            *PARTNER_ERRORS, 404, 422, s404="This partner sent no action with this id"
        ),
    )
    async def get_action(
        principal: Annotated[Principal, Depends(authenticate)], message_id: _MessageId
    ) -> ActionStatus:
        """The action's status, for the partner that sent it only: anyone else gets 404,
        exactly like an unknown id."""
        found = await actions.status(principal.partner_id, message_id)
        if found is None:
            raise HTTPException(404, "this partner sent no such action")
        return found
