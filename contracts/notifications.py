"""`leads.notifications`: requests for notification services to tell someone something."""

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from contracts.common import Contract, Email, Id, MessageId, Name
from contracts.topics import NotificationTemplate


class RecipientKind(StrEnum):
    PARTNER = "partner"
    CUSTOMER = "customer"
    REFERRER = "referrer"


class Recipient(Contract):
    """Who to tell. A partner's alert contact carries the partner's id, and its
    own e-mail and name; without them the partner as a whole is meant."""

    kind: RecipientKind
    id: Id | None = None
    email: Email | None = None
    name: Name | None = None
    role: str | None = Field(
        default=None, description="For a partner as a whole: only its users of this role"
    )


class NotificationRequested(Contract):
    notification_id: str
    type: Literal["notification.requested"] = "notification.requested"
    template: NotificationTemplate
    lead_id: Id
    partner_id: Id
    recipient: Recipient
    causation_id: MessageId
    data: dict[str, Any] = {}
