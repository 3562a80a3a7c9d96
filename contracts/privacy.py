"""`privacy.requests` and `privacy.outcomes`: a customer's right to erasure (GDPR
art. 17), carried to every recipient of their data (art. 19)."""

from typing import Literal, Self

from pydantic import Field, model_validator

from contracts.common import Contract, Email, Id, MessageId, Phone, UtcDatetime


class EraseCustomer(Contract):
    """Erase a customer's personal data from every lead of every partner, and from
    whatever the service holds of it. Matched as duplicates are: the e-mail
    case-insensitively, the phone in E.164."""

    request: Literal["erase_customer"] = "erase_customer"
    message_id: MessageId
    request_id: Id = Field(description="The erasure's id: its proof and its outcome carry it")
    email: Email | None = None
    phone: Phone | None = Field(
        default=None, description="In international form (+ and the country code)"
    )
    lead_id: Id | None = Field(
        default=None, description="A lead of the customer: its e-mail and phone are erased too"
    )
    requested_at: UtcDatetime

    @model_validator(mode="after")
    def _names_a_customer(self) -> Self:
        if self.email is None and self.phone is None and self.lead_id is None:
            raise ValueError("name the customer: email, phone or lead_id")
        return self


class ErasureCompleted(Contract):
    """One per request, once every lead and copy is erased: how far it reached.
    Sent again, the same request is answered again, with the same id."""

    type: Literal["privacy.erasure_completed"] = "privacy.erasure_completed"
    request_id: Id
    leads: int = Field(ge=0, description="Leads whose customer data was erased")
    partners: int = Field(ge=0, description="Partners those leads belonged to")
    requested_at: UtcDatetime
    completed_at: UtcDatetime
