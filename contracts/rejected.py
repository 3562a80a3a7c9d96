"""`leads.rejected`: every message the service refused, and why."""

from typing import Literal

from contracts.common import Contract, UtcDatetime
from contracts.topics import Reason


class MessageRejected(Contract):
    type: Literal["message.rejected"] = "message.rejected"
    message_id: str | None = None
    source_topic: str
    lead_id: str | None = None
    reason: Reason
    detail: str
    rejected_at: UtcDatetime
