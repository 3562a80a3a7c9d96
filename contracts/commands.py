"""`leads.commands`: system commands, from the scheduler worker."""

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.common import Contract, Id, MessageId, UtcDatetime


class _Command(Contract):
    message_id: MessageId
    lead_id: Id
    due_at: UtcDatetime


class Expire(_Command):
    command: Literal["expire"]


class AgeContactRequest(_Command):
    """`due_at` is the 72-hour mark of the customer's contact request."""

    command: Literal["age_contact_request"]


class Remind(_Command):
    command: Literal["remind"]
    remaining: timedelta = Field(description="ISO 8601 duration left before the lead expires")


class DealNudge(_Command):
    """An accepted deal has not moved for `LEADS_DEAL_NUDGE_AFTER`: its partner is nudged."""

    command: Literal["deal_nudge"]


class DealEscalate(_Command):
    """Still not moved after `LEADS_DEAL_ESCALATE_AFTER`: the partner's admins are told."""

    command: Literal["deal_escalate"]


class ClosePassed(_Command):
    """The deal's expected close date plus `LEADS_CLOSE_DATE_GRACE` has passed."""

    command: Literal["close_date_passed"]


class AutoClose(_Command):
    """Not moved for `LEADS_DEAL_AUTO_CLOSE_AFTER` (when set): the deal is closed as lost."""

    command: Literal["auto_close"]


DealCommand = DealNudge | DealEscalate | ClosePassed | AutoClose

Command = Annotated[
    Expire | AgeContactRequest | Remind | DealNudge | DealEscalate | ClosePassed | AutoClose,
    Field(discriminator="command"),
]
COMMAND: TypeAdapter[Command] = TypeAdapter(Command)
COMMANDS = Expire | AgeContactRequest | Remind | DealCommand
"""Every command's class, for `isinstance`."""
