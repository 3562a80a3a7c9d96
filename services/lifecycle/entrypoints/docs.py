"""The contract as documents: JSON Schemas of every message, the AsyncAPI
document generated from the FastStream app and the read API's OpenAPI document.
Never written by hand."""

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.actions import PartnerAction
from contracts.commands import Command
from contracts.events import LeadEvent
from contracts.inbound import InboundLead
from contracts.notifications import NotificationRequested
from contracts.performance import PerformanceUpdated
from contracts.profiles import PartnerProfile
from contracts.rejected import MessageRejected
from contracts.topics import Topic

DESCRIPTIONS = {
    Topic.INBOUND: "New leads from upstream referral systems.",
    Topic.PARTNER_ACTIONS: "What a partner user did to a lead.",
    Topic.COMMANDS: "System commands (expire, remind, age_contact_request) from the scheduler.",
    Topic.PROFILES: "Partner business profiles (upserts).",
    Topic.EVENTS: "Lifecycle facts, for CRM connectors and analytics.",
    Topic.NOTIFICATIONS: "Notification requests, for notification services.",
    Topic.REJECTED: "Every message the service refused, with the reason.",
    Topic.PERFORMANCE: "partner.performance_updated: a partner's responsiveness figures "
    "changed (coalesced per LEADS_PERFORMANCE_INTERVAL), from the scheduler worker.",
}

INPUT_MODELS: dict[Topic, Any] = {
    Topic.INBOUND: InboundLead,
    Topic.PARTNER_ACTIONS: PartnerAction,
    Topic.COMMANDS: Command,
    Topic.PROFILES: PartnerProfile,
}
OUTPUT_MODELS: dict[Topic, Any] = {
    Topic.EVENTS: LeadEvent,
    Topic.NOTIFICATIONS: NotificationRequested,
    Topic.REJECTED: MessageRejected,
    Topic.PERFORMANCE: PerformanceUpdated,
}


def json_schemas() -> dict[Topic, dict[str, Any]]:
    return {
        topic: TypeAdapter(model).json_schema()
        for topic, model in (INPUT_MODELS | OUTPUT_MODELS).items()
    }


def asyncapi(app: Any) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the running app's broker.

    The subscribers take raw records (so that bad JSON can be answered, not
    crash the decoder); their payload schemas are the contract models."""
    from faststream.specification import AsyncAPI

    spec: dict[str, Any] = (
        AsyncAPI(
            app.broker,
            title="Lead lifecycle service",
            version="1.0.0",
            description="Message contract v1: leads in, lifecycle events and notifications out.",
        )
        .to_specification()
        .to_jsonable()
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    messages = spec["components"].setdefault("messages", {})
    for topic, model in INPUT_MODELS.items():
        name = app.topic_name(topic)
        found = [m for key, m in messages.items() if key.endswith(f"{name}:SubscribeMessage")]
        if not found:
            continue  # not consumed yet
        message = found[0]
        for channel in spec["channels"].values():
            if channel["address"] == name:
                channel["description"] = DESCRIPTIONS[topic]
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        title = schema.get("title") or f"{topic.name.title().replace('_', '')}"
        schemas[title] = schema
        message["payload"] = {"$ref": f"#/components/schemas/{title}"}
    schemas.pop("EmptyPayload", None)
    return spec


def write(app: Any, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, schema in json_schemas().items():
        path = out / f"{topic.value}.schema.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        written.append(path)
    path = out / "asyncapi.json"
    path.write_text(json.dumps(asyncapi(app), indent=2) + "\n")
    written.append(path)
    path = out / "openapi.json"
    path.write_text(json.dumps(app.api.openapi(), indent=2) + "\n")
    written.append(path)
    return written
