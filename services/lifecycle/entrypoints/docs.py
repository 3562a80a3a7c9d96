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
from contracts.topics import OUTBOUND_TOPICS, Topic
from services.lifecycle.settings import Settings

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
    Topic.DEAD_LETTER: "Messages parked after repeated unforeseen failures: the original value "
    "and headers untouched, plus dlq_* headers naming the source topic, partition, offset "
    "and error class. `leads dead-letters replay` sends them back once the cause is fixed.",
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


def spec_broker(settings: Settings) -> Any:
    """A broker that is never connected, declaring what the service consumes and
    publishes: the source of the AsyncAPI document."""
    from faststream.kafka import KafkaBroker

    broker = KafkaBroker(settings.kafka_bootstrap_servers)

    async def lifecycle(record: bytes) -> None:
        """Documentation only: the service's own consumer reads these topics."""

    broker.subscriber(
        *(topic.named(settings.topic_prefix) for topic in INPUT_MODELS),
        group_id=settings.consumer_group,
        title="lifecycle",
        description="Leads, partner actions, scheduler commands and partner profiles, "
        "in one consumer group.",
    )(lifecycle)
    for topic in OUTBOUND_TOPICS:
        broker.publisher(
            topic.named(settings.topic_prefix),
            title=topic.named(settings.topic_prefix),
            description=DESCRIPTIONS[topic],
            schema=OUTPUT_MODELS.get(topic, bytes),
        )
    return broker


def asyncapi(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of what the service consumes and publishes.

    The consumer takes raw records (so that bad JSON can be answered, not
    crash a decoder); their payload schemas are the contract models."""
    from faststream.specification import AsyncAPI

    spec: dict[str, Any] = (
        AsyncAPI(
            spec_broker(settings),
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
        name = topic.named(settings.topic_prefix)
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
    path.write_text(json.dumps(asyncapi(app.settings), indent=2) + "\n")
    written.append(path)
    path = out / "openapi.json"
    path.write_text(json.dumps(app.api.openapi(), indent=2) + "\n")
    written.append(path)
    return written
