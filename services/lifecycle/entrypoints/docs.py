"""The contract as documents: JSON Schemas of every message, the AsyncAPI
document generated from the FastStream app and the read API's OpenAPI document.
Never written by hand."""

import json
from pathlib import Path
from typing import Any, get_args

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from contracts.actions import PartnerAction
from contracts.commands import Command
from contracts.events import LeadEvent, LeadState
from contracts.inbound import InboundLead, ReopenLead
from contracts.notifications import NotificationRequested
from contracts.performance import PerformanceUpdated
from contracts.privacy import EraseCustomer, ErasureCompleted
from contracts.profiles import PartnerProfile
from contracts.rejected import MessageRejected
from contracts.topics import COMPACTED_TOPICS, OUTBOUND_TOPICS, EventType, Topic
from services.lifecycle.settings import Settings

DESCRIPTIONS = {
    Topic.INBOUND: "New leads from upstream referral systems (InboundLead), and their "
    "referrers' requests to reopen one (ReopenLead, `message_type: reopen`).",
    Topic.PARTNER_ACTIONS: "What a partner user did to a lead.",
    Topic.COMMANDS: "System commands from the scheduler: expire, remind, age_contact_request, "
    "and on accepted deals deal_nudge, deal_escalate, close_date_passed, auto_close.",
    Topic.PROFILES: "Partner business profiles (upserts).",
    Topic.EVENTS: "Lifecycle facts, for CRM connectors and analytics.",
    Topic.NOTIFICATIONS: "Notification requests, for notification services.",
    Topic.REJECTED: "Every message the service refused, with the reason.",
    Topic.PERFORMANCE: "partner.performance_updated: a partner's responsiveness figures "
    "changed (coalesced per LEADS_PERFORMANCE_INTERVAL), from the scheduler worker.",
    Topic.STATE: "Each lead's current state (LeadState: the lead as the read API returns it, "
    "without history, with its `version`), after every change, written with the change's "
    "events. Log-compacted: the latest state of every lead stays. A null value (a tombstone) "
    "is a lead deleted for good once LEADS_LEAD_RETENTION passed. A connector that joins "
    "late reads it to its end offsets, then follows leads.events from there, dropping events "
    "at or below the version it holds, and those of leads deleted.",
    Topic.DEAD_LETTER: "Messages parked after repeated unforeseen failures: the original value "
    "and headers untouched, plus dlq_* headers naming the source topic, partition, offset "
    "and error class. `leads dead-letters replay` sends them back once the cause is fixed.",
    Topic.PRIVACY_REQUESTS: "Customers' erasure requests (EraseCustomer, e.g. from "
    "`leads privacy erase`): the customer's contact data is erased from every lead of every "
    "partner and every copy the service holds; each lead that held it publishes "
    "lead.customer_erased. A request that does not match the contract goes to "
    "leads.rejected (`malformed`).",
    Topic.PRIVACY_OUTCOMES: "privacy.erasure_completed: one per erasure request, once every "
    "lead and copy is erased, with how many leads and partners it reached; a request sent "
    "again is answered again, under the same `ce_id`. Carries no personal data.",
}

INPUT_MODELS: dict[Topic, Any] = {
    Topic.INBOUND: InboundLead | ReopenLead,
    Topic.PARTNER_ACTIONS: PartnerAction,
    Topic.COMMANDS: Command,
    Topic.PROFILES: PartnerProfile,
    Topic.PRIVACY_REQUESTS: EraseCustomer,
}
OUTPUT_MODELS: dict[Topic, Any] = {
    Topic.EVENTS: LeadEvent,
    Topic.NOTIFICATIONS: NotificationRequested,
    Topic.REJECTED: MessageRejected,
    Topic.PERFORMANCE: PerformanceUpdated,
    Topic.STATE: LeadState,
    Topic.PRIVACY_OUTCOMES: ErasureCompleted,
}

MESSAGE_NAMES = {
    Topic.INBOUND: "InboundMessage",
    Topic.PARTNER_ACTIONS: "PartnerAction",
    Topic.COMMANDS: "Command",
    Topic.PROFILES: "PartnerProfile",
    Topic.EVENTS: "LeadEvent",
    Topic.NOTIFICATIONS: "NotificationRequested",
    Topic.REJECTED: "MessageRejected",
    Topic.PERFORMANCE: "PerformanceUpdated",
    Topic.DEAD_LETTER: "DeadLetter",
    Topic.STATE: "LeadState",
    Topic.PRIVACY_REQUESTS: "EraseCustomer",
    Topic.PRIVACY_OUTCOMES: "ErasureCompleted",
}
"""Component keys: AsyncAPI allows only [a-zA-Z0-9.-_] in them."""

KEYS = {
    Topic.INBOUND: "The lead id (UTF-8).",
    Topic.PARTNER_ACTIONS: "The lead id (UTF-8).",
    Topic.COMMANDS: "The lead id (UTF-8).",
    Topic.PROFILES: "The partner id (UTF-8).",
    Topic.EVENTS: "The lead id (UTF-8).",
    Topic.NOTIFICATIONS: "The lead id (UTF-8).",
    Topic.REJECTED: "The refused message's lead id, else its message id (UTF-8); empty when "
    "it had neither (e.g. bytes that are not JSON).",
    Topic.PERFORMANCE: "The partner id (UTF-8): a partner's updates stay in order.",
    Topic.DEAD_LETTER: "The parked record's key, untouched.",
    Topic.STATE: "The lead id (UTF-8): compaction keeps the latest record of each lead.",
    Topic.PRIVACY_REQUESTS: "The request id (UTF-8).",
    Topic.PRIVACY_OUTCOMES: "The request id (UTF-8).",
}
"""What the Kafka key of each topic's records is."""

SUBJECTS = {
    Topic.COMMANDS: "The lead id.",
    Topic.EVENTS: "The lead id.",
    Topic.NOTIFICATIONS: "The lead id.",
    Topic.REJECTED: "The refused message's lead id, else its message id; left out when it "
    "had neither.",
    Topic.PERFORMANCE: "The partner id.",
    Topic.STATE: "The lead id.",
    Topic.PRIVACY_OUTCOMES: "The request id.",
}
"""`ce_subject` of the topics the service and the scheduler publish with CloudEvents headers."""

CORRELATIONS = {
    Topic.EVENTS: ("$message.payload#/causation_id", "The `message_id` that caused the event."),
    Topic.NOTIFICATIONS: (
        "$message.payload#/causation_id",
        "The `message_id` that caused the notification.",
    ),
    Topic.REJECTED: ("$message.payload#/message_id", "The refused message's `message_id`."),
    Topic.PRIVACY_OUTCOMES: (
        "$message.payload#/request_id",
        "The `request_id` of the EraseCustomer it answers.",
    ),
}
"""Where a message names the message it answers (no header carries a correlation id)."""

DEAD_LETTER_HEADERS = {
    "dlq_original_topic": ("The topic the record was read from.", {}),
    "dlq_original_partition": ("Its partition, in decimal.", {"pattern": "^[0-9]+$"}),
    "dlq_original_offset": ("Its offset, in decimal.", {"pattern": "^[0-9]+$"}),
    "dlq_error_class": ("The class of the error that kept it failing.", {}),
    "dlq_error_message": ("That error's message (never customer data).", {}),
    "dlq_id": ("This parked record's id: replay and dedupe use it.", {}),
    "dlq_parked_at": ("When it was parked, RFC 3339.", {"format": "date-time"}),
}


class StandaloneJsonSchema(GenerateJsonSchema):
    """JSON Schema 2020-12 as any validator knows it: `$schema` declared, and no
    OpenAPI `discriminator` (each branch's `const` already tells them apart)."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}

    def tagged_union_schema(self, schema: core_schema.TaggedUnionSchema) -> JsonSchemaValue:
        generated = super().tagged_union_schema(schema)
        generated.pop("discriminator", None)
        return generated


class AsyncApiSchema(GenerateJsonSchema):
    """AsyncAPI 3's Schema Object: its `discriminator` is the property's name."""

    def tagged_union_schema(self, schema: core_schema.TaggedUnionSchema) -> JsonSchemaValue:
        generated = super().tagged_union_schema(schema)
        found = generated.get("discriminator")
        if isinstance(found, dict):
            generated["discriminator"] = found["propertyName"]
        return generated


def json_schemas() -> dict[Topic, dict[str, Any]]:
    return {
        topic: TypeAdapter(model).json_schema(schema_generator=StandaloneJsonSchema)
        for topic, model in (INPUT_MODELS | OUTPUT_MODELS).items()
    }


def spec_broker(settings: Settings) -> Any:
    """A broker that is never connected, declaring what the service consumes and
    publishes: the source of the AsyncAPI document."""
    from faststream.kafka import KafkaBroker

    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        description="The Kafka named by LEADS_KAFKA_BOOTSTRAP_SERVERS. `leads dev` runs an "
        "embedded broker (Tansu) on a free port and prints its address.",
    )

    async def lifecycle(record: bytes) -> None:
        """Documentation only: the service's own consumer reads these topics."""

    broker.subscriber(
        *(topic.named(settings.topic_prefix) for topic in INPUT_MODELS),
        group_id=settings.consumer_group,
        title="lifecycle",
        description="Leads, partner actions, scheduler commands, partner profiles and "
        "customers' erasure requests, in one consumer group.",
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

    FastStream lays out the channels and operations of `spec_broker`; each topic's
    message is then described from the contract: payload model, headers, key."""
    from faststream.specification import AsyncAPI

    spec: dict[str, Any] = (
        AsyncAPI(
            spec_broker(settings),
            title="Lead lifecycle service",
            version="1.0.0",
            description="Message contract v1: leads in, lifecycle events and notifications "
            "out; customers' erasure requests in, their outcomes out. Records the service and "
            "the scheduler publish carry CloudEvents 1.0 headers (Kafka binary mode).",
        )
        .to_specification()
        .to_jsonable()
    )
    topics = {topic.named(settings.topic_prefix): topic for topic in Topic}
    spec = _named_by_topic(spec, topics)
    schemas: dict[str, Any] = {}
    messages = {
        MESSAGE_NAMES[topic]: _message(topic, schemas)
        for topic in (*INPUT_MODELS, *OUTBOUND_TOPICS)
    }
    spec["components"] = {"messages": messages, "schemas": schemas}
    spec["servers"]["production"] = {
        "host": "{bootstrap}",
        "protocol": "kafka",
        "description": "A production cluster: your bootstrap servers.",
        "variables": {"bootstrap": {"default": "kafka.internal:9092"}},
    }
    return spec


def _named_by_topic(spec: dict[str, Any], topics: dict[str, Topic]) -> dict[str, Any]:
    """Channels, operations and messages keyed by topic and message name instead of
    FastStream's `title:address:SubscribeMessage` (AsyncAPI allows no `:` in keys);
    every channel on every server."""
    renamed: dict[str, str] = {}
    channels = {}
    for key, channel in spec["channels"].items():
        topic = topics[channel["address"]]
        name = MESSAGE_NAMES[topic]
        channel.pop("servers", None)
        channel["description"] = DESCRIPTIONS[topic]
        [(old_message, _)] = channel["messages"].items()
        channel["messages"] = {name: {"$ref": f"#/components/messages/{name}"}}
        if topic in COMPACTED_TOPICS:
            channel["bindings"] = {
                "kafka": {
                    "topic": topic.value,
                    "topicConfiguration": {"cleanup.policy": ["compact"]},
                    "bindingVersion": "0.5.0",
                }
            }
        channels[topic.value] = channel
        renamed[f"#/channels/{key}/messages/{old_message}"] = (
            f"#/channels/{topic.value}/messages/{name}"
        )
        renamed[f"#/channels/{key}"] = f"#/channels/{topic.value}"
    operations = {}
    for operation in spec["operations"].values():
        operation["channel"]["$ref"] = renamed[operation["channel"]["$ref"]]
        operation["messages"] = [{"$ref": renamed[m["$ref"]]} for m in operation["messages"]]
        address = operation["channel"]["$ref"].removeprefix("#/channels/")
        operations[f"{operation['action']}.{address}"] = operation
    return {**spec, "channels": channels, "operations": operations}


def _message(topic: Topic, schemas: dict[str, Any]) -> dict[str, Any]:
    name = MESSAGE_NAMES[topic]
    message: dict[str, Any] = {"name": name, "title": name, "summary": DESCRIPTIONS[topic]}
    model = INPUT_MODELS.get(topic) or OUTPUT_MODELS.get(topic)
    if model is None:  # the dead-letter topic: whatever was parked
        message["contentType"] = "application/octet-stream"
        message["payload"] = {"description": "The parked record's value, byte for byte."}
        message["headers"] = _dead_letter_headers()
    else:
        message["contentType"] = "application/json"
        schema = TypeAdapter(model).json_schema(
            ref_template="#/components/schemas/{model}", schema_generator=AsyncApiSchema
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        message["payload"] = {"$ref": f"#/components/schemas/{name}"}
    if topic in SUBJECTS:
        message["headers"] = _cloudevents_headers(topic)
    if topic in CORRELATIONS:
        location, description = CORRELATIONS[topic]
        message["correlationId"] = {"location": location, "description": description}
    message["bindings"] = {
        "kafka": {"key": {"type": "string", "description": KEYS[topic]}, "bindingVersion": "0.5.0"}
    }
    return message


def _cloudevents_headers(topic: Topic) -> dict[str, Any]:
    """CloudEvents 1.0, Kafka protocol binding, binary mode."""
    headers = {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {
            "type": "string",
            "minLength": 1,
            "description": "Derived from the cause: a re-publish carries the same id.",
        },
        "ce_type": {"type": "string", "enum": _event_types(topic)},
        "ce_source": {
            "type": "string",
            "format": "uri-reference",
            "description": "LEADS_EVENT_SOURCE (with `:scheduler` from the scheduler worker).",
        },
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "minLength": 1, "description": SUBJECTS[topic]},
        "content-type": {"type": "string", "const": "application/json"},
    }
    always = [name for name in headers if topic is not Topic.REJECTED or name != "ce_subject"]
    return {"type": "object", "properties": headers, "required": always}


def _event_types(topic: Topic) -> list[str]:
    if topic is Topic.EVENTS:
        return [event_type.value for event_type in EventType]
    if topic is Topic.COMMANDS:
        union, _ = get_args(Command)
        return [
            f"command.{get_args(c.model_fields['command'].annotation)[0]}" for c in get_args(union)
        ]
    if topic is Topic.STATE:
        return [LeadState.type]
    return [OUTPUT_MODELS[topic].model_fields["type"].default]


def _dead_letter_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The parked record's own headers, untouched, and these.",
        "properties": {
            name: {"type": "string", "description": description, **constraints}
            for name, (description, constraints) in DEAD_LETTER_HEADERS.items()
        },
        "required": list(DEAD_LETTER_HEADERS),
        "additionalProperties": True,
    }


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
