"""`leads.notifications`: requests for notification services to tell someone something."""

from enum import StrEnum
from typing import Any, Literal

from contracts.common import Contract, Email, Id, MessageId
from contracts.topics import NotificationTemplate


class RecipientKind(StrEnum):
    PARTNER = "partner"
    CUSTOMER = "customer"
    REFERRER = "referrer"


class Recipient(Contract):
    kind: RecipientKind
    id: Id | None = None
    email: Email | None = None


class NotificationRequested(Contract):
    notification_id: str
    type: Literal["notification.requested"] = "notification.requested"
    template: NotificationTemplate
    lead_id: Id
    partner_id: Id
    recipient: Recipient
    causation_id: MessageId
    data: dict[str, Any] = {}
