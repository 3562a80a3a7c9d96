"""Field types shared by the messages: ids, text, money, places, people."""

import functools
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.networks import validate_email

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"

Id = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=64),
    Field(description="1..64 characters of [A-Za-z0-9._:-]"),
]
MessageId = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=128),
    Field(description="Idempotency key: 1..128 characters of [A-Za-z0-9._:-]"),
]


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()./-]{3,32}$")]


@functools.lru_cache(maxsize=65536)
def _email(value: str) -> str:
    # email-validator is thorough, and slow: an address comes back with every
    # message of its lead, so each one is checked (and normalized) once.
    return validate_email(value)[1]


Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of UTC: no such instant in UTC
        raise ValueError("the time is out of range in UTC") from None


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="RFC 3339 with offset; stored and emitted in UTC"),
]

_CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


def _member_of(codes: frozenset[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in codes:
            raise ValueError(f"not an {what} code")
        return value

    return AfterValidator(check)


Currency = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), _member_of(_CURRENCIES, "ISO 4217 currency")
]
Country = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}$"), _member_of(_COUNTRIES, "ISO 3166-1 alpha-2")
]

MAX_AMOUNT = Decimal("1000000000000")  # a trillion: larger is a typo, not a deal

AMOUNT_PATTERN = r"^[0-9]{1,13}(\.[0-9]{1,4})?$"


def _decimal_string(value: object) -> object:
    # A JSON number would arrive as a float and lose cents: the contract says string.
    # Parsed here, so that strict validation (the HTTP API's) takes the string too.
    if isinstance(value, Decimal):
        return value
    try:
        if isinstance(value, str):
            return Decimal(value)
    except ArithmeticError:
        pass
    raise ValueError('amount must be a decimal string such as "1250.00"')


Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(gt=0, le=MAX_AMOUNT, decimal_places=4),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="always"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": "Positive decimal string, at most 10^12, at most 4 decimal places",
        }
    ),
]


class Contract(BaseModel):
    """Base of every message: unknown fields are ignored so that producers can
    add optional fields without breaking this consumer (tolerant reader)."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class Money(Contract):
    amount: Amount
    currency: Currency


class Contact(Contract):
    """A person on the partner's side who works on the deal."""

    name: Name
    email: Email
    phone: Phone | None = None


class DeclineReason(StrEnum):
    BUDGET_NOT_ADEQUATE = "budget_not_adequate"
    CUSTOMER_UNRESPONSIVE = "customer_unresponsive"
    CHOSE_ANOTHER_VENDOR = "chose_another_vendor"
    REQUIREMENT_NOT_MET = "requirement_not_met"
    NOT_A_CUSTOMER = "not_a_customer"
    TIMELINE_TOO_SHORT = "timeline_too_short"
    SPAM_OR_ABUSE = "spam_or_abuse"
    DUPLICATE = "duplicate"
    OTHER = "other"
    NO_UPDATE = "no_update"
    """A deal closed as lost by the service: nobody moved it for LEADS_DEAL_AUTO_CLOSE_AFTER."""


def utc_now() -> datetime:
    return datetime.now(UTC)
