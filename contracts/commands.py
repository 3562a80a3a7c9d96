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


Command = Annotated[Expire | AgeContactRequest | Remind, Field(discriminator="command")]
COMMAND: TypeAdapter[Command] = TypeAdapter(Command)
