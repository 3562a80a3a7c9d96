"""The read API's answers about partner actions taken over HTTP (`POST /v1/leads/{id}/actions`,
`GET /v1/actions/{message_id}`)."""

from typing import Literal

from pydantic import Field

from contracts.common import Contract, Id, MessageId
from contracts.topics import EventType, Reason

ActionState = Literal["pending", "applied", "rejected"]


class ActionAccepted(Contract):
    """The action is on `leads.partner-actions`; the lifecycle rules decide it next."""

    message_id: MessageId = Field(
        description="`<partner_id>:<Idempotency-Key>`: the action's message_id on Kafka"
    )
    status: Literal["pending"] = "pending"


class ActionStatus(Contract):
    """What became of an action: waiting, applied, or refused with a reason."""

    message_id: MessageId
    status: ActionState = Field(
        description="`pending` until the lifecycle rules have decided (an action waiting "
        "for its lead is pending too); then `applied` or `rejected`"
    )
    lead_id: Id | None = None
    event: EventType | None = Field(
        default=None,
        description="When applied: the event it caused; null when the lead already was so",
    )
    version: int | None = Field(
        default=None, ge=1, description="When applied: the lead's version after it"
    )
    reason: Reason | None = Field(default=None, description="When rejected: why")
    detail: str | None = Field(
        default=None, description="When rejected: what was wrong, in words (no personal data)"
    )
