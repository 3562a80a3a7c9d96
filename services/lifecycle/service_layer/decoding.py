"""Turn a record's raw bytes into a contract message, or a readable `malformed` refusal.

This is the only decoding a record gets: strict UTF-8 JSON (no BOM, no lone
surrogates, bounded nesting) parsed and validated in one pass by pydantic.
Whatever the bytes, the result is a message or `Malformed`, never another error.
"""

import json
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from contracts.actions import PARTNER_ACTION, PartnerAction
from contracts.commands import COMMAND, Command
from contracts.inbound import InboundLead, ReopenLead
from contracts.privacy import EraseCustomer
from contracts.profiles import PartnerProfile
from contracts.topics import Reason, Topic
from services.lifecycle.domain.errors import Refused

ADAPTERS: dict[Topic, TypeAdapter[Any]] = {
    Topic.INBOUND: TypeAdapter(InboundLead),
    Topic.PARTNER_ACTIONS: PARTNER_ACTION,
    Topic.COMMANDS: COMMAND,
    Topic.PROFILES: TypeAdapter(PartnerProfile),
}

_REOPEN = TypeAdapter(ReopenLead)
_REQUEST = TypeAdapter(EraseCustomer)
T = TypeVar("T")

Decoded = InboundLead | ReopenLead | PartnerAction | Command | PartnerProfile
"""A message of one of the lead service's input topics, as its topic's contract reads it."""

MAX_ERRORS_SHOWN = 5
_EMAIL_PREFIX = "value is not a valid email address"


class Malformed(Refused):
    """Not JSON, or not the schema. Carries whatever ids could still be read."""

    def __init__(self, detail: str, message_id: str | None, lead_id: str | None) -> None:
        super().__init__(Reason.MALFORMED, detail)
        self.message_id = message_id
        self.lead_id = lead_id


def decode(topic: Topic, value: bytes) -> Decoded:
    message: Decoded = _validated(_adapter(topic, value), value)
    return message


def decode_request(value: bytes) -> EraseCustomer:
    """A privacy request (`privacy.requests`), or `Malformed`."""
    return _validated(_REQUEST, value)


def _validated(adapter: TypeAdapter[T], value: bytes) -> T:
    try:
        return adapter.validate_json(value)
    except ValidationError as error:
        if _not_json(error):
            raise Malformed(
                f"value is not UTF-8 JSON: {_json_problem(error)}", None, None
            ) from None
        message_id, lead_id = readable_ids(value)
        raise Malformed(describe(error), message_id, lead_id) from None


def _adapter(topic: Topic, value: bytes) -> TypeAdapter[Any]:
    """The contract a record is read by. On leads.inbound only a referrer's `reopen`
    names its type (a lead is the v1 message): a lead is parsed once, as ever, and a
    record that names a type is looked at first."""
    if topic is Topic.INBOUND and b"message_type" in value and _names_reopen(value):
        return _REOPEN
    return ADAPTERS[topic]


def _names_reopen(value: bytes) -> bool:
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("message_type") == "reopen"


def lead_id_of(message: Decoded | Refused | None) -> str | None:
    """The lead a message (or a refusal of one) is about, if it names one."""
    return getattr(message, "lead_id", None)


def describe(error: ValidationError) -> str:
    """Which fields are wrong and how, never echoing the values (they may be personal data)."""
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {in_words(e)}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
    more = len(problems) - MAX_ERRORS_SHOWN
    return f"does not match the contract: {shown}" + (f"; and {more} more" if more > 0 else "")


def in_words(error: ErrorDetails) -> str:
    """The error in words that never quote the value: some of pydantic's messages
    (an unknown union tag) and email-validator's do."""
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"{ctx.get('discriminator', 'the tag')} must be one of {ctx.get('expected_tags')}"
    if error["msg"].startswith(_EMAIL_PREFIX):
        return "value is not a valid email address"
    return error["msg"]


def readable_ids(value: bytes) -> tuple[str | None, str | None]:
    """The message_id and lead_id of a record that is JSON but not the contract,
    when they are short plain strings worth quoting back."""
    try:
        document = json.loads(value.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, None
    return _readable_id(document, "message_id"), _readable_id(document, "lead_id")


def _not_json(error: ValidationError) -> bool:
    return any(e["type"] == "json_invalid" for e in error.errors(include_url=False))


def _json_problem(error: ValidationError) -> str:
    # "Invalid JSON: <what> at line L column C": where and what, never the bytes.
    message = error.errors(include_input=False, include_url=False)[0]["msg"]
    return message.removeprefix("Invalid JSON: ")


def _readable_id(document: Any, name: str) -> str | None:
    value = document.get(name) if isinstance(document, dict) else None
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
        return value
    return None
