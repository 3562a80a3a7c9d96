"""Turn raw Kafka values into contract messages, or a readable `malformed` refusal."""

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.actions import PARTNER_ACTION
from contracts.commands import COMMAND
from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import Reason, Topic
from services.lifecycle.domain.errors import Refused

ADAPTERS: dict[Topic, TypeAdapter[Any]] = {
    Topic.INBOUND: TypeAdapter(InboundLead),
    Topic.PARTNER_ACTIONS: PARTNER_ACTION,
    Topic.COMMANDS: COMMAND,
    Topic.PROFILES: TypeAdapter(PartnerProfile),
}

MAX_ERRORS_SHOWN = 5


class Malformed(Refused):
    """Not JSON, or not the schema. Carries whatever ids could still be read."""

    def __init__(self, detail: str, message_id: str | None, lead_id: str | None) -> None:
        super().__init__(Reason.MALFORMED, detail)
        self.message_id = message_id
        self.lead_id = lead_id


def decode(topic: Topic, value: bytes) -> BaseModel:
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Malformed(f"value is not UTF-8 JSON: {_json_error(error)}", None, None) from None
    try:
        message: BaseModel = ADAPTERS[topic].validate_python(document)
    except ValidationError as error:
        raise Malformed(
            describe(error), _readable_id(document, "message_id"), _readable_id(document, "lead_id")
        ) from None
    return message


def describe(error: ValidationError) -> str:
    """Which fields are wrong and how, never echoing the values (they may be personal data)."""
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
    more = len(problems) - MAX_ERRORS_SHOWN
    return f"does not match the contract: {shown}" + (f"; and {more} more" if more > 0 else "")


def _json_error(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return "invalid UTF-8"


def _readable_id(document: Any, name: str) -> str | None:
    """An id worth quoting back in a rejection: a short, plain string, or nothing."""
    value = document.get(name) if isinstance(document, dict) else None
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isprintable():
        return value
    return None
