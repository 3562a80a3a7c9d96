"""`leads.partner-actions`: what a partner user did to a lead."""

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, TypeAdapter, model_validator

from contracts.common import (
    Contact,
    Contract,
    DeclineReason,
    Id,
    MessageId,
    Money,
    Name,
    Notes,
    UtcDatetime,
)

PARTNER_ROLES = frozenset({"mpn_partner_admin", "referrals_admin"})
"""The roles allowed to act on leads; any other role is refused `forbidden`."""


class Actor(Contract):
    user_id: Id
    # Free text here on purpose: an unknown role is a `forbidden` refusal, not `malformed`.
    role: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Deal(Contract):
    name: Name
    value: Money
    estimated_close_date: date
    notes: Notes | None = None
    crm_id: Id | None = None
    campaign_id: Id | None = None


class DealChanges(Contract):
    name: Name | None = None
    value: Money | None = None
    estimated_close_date: date | None = None
    notes: Notes | None = None
    crm_id: Id | None = None
    campaign_id: Id | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> "DealChanges":
        if all(getattr(self, field) is None for field in type(self).model_fields):
            raise ValueError("changes must name at least one field to change")
        return self


Contacts = Annotated[list[Contact], Field(min_length=1, max_length=50)]


class _Action(Contract):
    message_id: MessageId
    lead_id: Id
    partner_id: Id
    actor: Actor
    occurred_at: UtcDatetime | None = None
    expected_version: int | None = Field(
        default=None,
        ge=1,
        description="The lead's version the sender saw (HTTP If-Match); if the lead has "
        "moved on since, the action is refused `stale_version`",
    )


class Accept(_Action):
    action: Literal["accept"]
    deal: Deal
    contacts: Annotated[list[Contact], Field(max_length=50)] = []


class Decline(_Action):
    action: Literal["decline"]
    reason: DeclineReason
    notes: Notes | None = None
    duplicate_of: Id | None = Field(
        default=None,
        description="With reason `duplicate`: the partner's own lead this one repeats",
    )

    @model_validator(mode="after")
    def _duplicate_of_a_lead(self) -> "Decline":
        if self.duplicate_of is not None:
            if self.reason is not DeclineReason.DUPLICATE:
                raise ValueError("duplicate_of goes only with reason duplicate")
            if self.duplicate_of == self.lead_id:
                raise ValueError("a lead cannot be a duplicate of itself")
        return self


class UndoDecline(_Action):
    """Within `LEADS_UNDO_WINDOW` of the partner's decline, unless the lead went to
    another partner since: the lead is received again (its contact data stays erased)."""

    action: Literal["undo_decline"]


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"


class LogActivity(_Action):
    """Work on an accepted deal: it moved, its idle clock starts again."""

    action: Literal["log_activity"]
    kind: ActivityKind
    summary: Notes


class Snooze(_Action):
    """Pause an accepted deal's idle clock until `until` (at most 14 days ahead)."""

    action: Literal["snooze"]
    until: UtcDatetime


class Update(_Action):
    action: Literal["update"]
    changes: DealChanges


class AddContacts(_Action):
    action: Literal["add_contacts"]
    contacts: Contacts


class Won(_Action):
    action: Literal["won"]
    notes: Notes | None = None


class Lost(_Action):
    action: Literal["lost"]
    reason: DeclineReason | None = None
    notes: Notes | None = None


class Favorite(_Action):
    action: Literal["favorite"]


class Unfavorite(_Action):
    action: Literal["unfavorite"]


PartnerAction = Annotated[
    Accept
    | Decline
    | UndoDecline
    | Update
    | AddContacts
    | LogActivity
    | Snooze
    | Won
    | Lost
    | Favorite
    | Unfavorite,
    Field(discriminator="action"),
]
PARTNER_ACTION: TypeAdapter[PartnerAction] = TypeAdapter(PartnerAction)
