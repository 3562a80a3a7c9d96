"""`make run`'s demo: sample leads and partner actions in, events and notifications out.

Talks to the service only through Kafka, as an upstream system would.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import OUTBOUND_TOPICS, Topic
from services.lifecycle.settings import Settings

PARTNER = "contoso-partners"
ADMIN = {"user_id": "ada", "role": "referrals_admin"}


def _lead(lead_id: str, lead_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "partner_id": PARTNER,
        "lead_type": lead_type,
        "referrer": {"kind": "microsoft", "id": "ms-marketing", "email": "leads@example.com"},
        "customer": {
            "company_name": "Fabrikam",
            "contact_name": "Grace Hopper",
            "email": "grace@fabrikam.example",
            "country": "DE",
            "company_size": "50-249",
        },
        "need": "Move our ERP to the cloud before the next fiscal year.",
        **extra,
    }


def _action(lead_id: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "partner_id": PARTNER, "actor": ADMIN, "action": action, **extra}


def script() -> list[tuple[Topic, dict[str, Any] | bytes]]:
    """A lead won, a lead declined, a lead expired, and three refusals."""
    deal = {
        "name": "Fabrikam ERP migration",
        "value": {"amount": "120000.00", "currency": "EUR"},
        "estimated_close_date": "2027-03-31",
    }
    fifteen_days_ago = (datetime.now(UTC) - timedelta(days=15)).isoformat()
    return [
        (Topic.INBOUND, _lead("demo-won", "customer_inquiry", contact_requested=True)),
        (Topic.PARTNER_ACTIONS, _action("demo-won", "accept", deal=deal)),
        (Topic.PARTNER_ACTIONS, _action("demo-won", "update", changes={"notes": "CFO on board"})),
        (
            Topic.PARTNER_ACTIONS,
            _action(
                "demo-won",
                "add_contacts",
                contacts=[{"name": "Lin", "email": "lin@contoso.example"}],
            ),
        ),
        (Topic.PARTNER_ACTIONS, _action("demo-won", "won")),
        (Topic.INBOUND, _lead("demo-declined", "marketing_qualified")),
        (Topic.PARTNER_ACTIONS, _action("demo-declined", "decline", reason="budget_not_adequate")),
        (Topic.INBOUND, _lead("demo-expired", "sales_qualified", received_at=fifteen_days_ago)),
        (
            Topic.COMMANDS,
            {
                "command": "expire",
                "lead_id": "demo-expired",
                "due_at": datetime.now(UTC).isoformat(),
            },
        ),
        (Topic.PARTNER_ACTIONS, _action("demo-won", "update", changes={"notes": "too late"})),
        (
            Topic.PARTNER_ACTIONS,
            {**_action("demo-declined", "favorite"), "partner_id": "someone-else"},
        ),
        (Topic.INBOUND, b"{this is not json"),
    ]


def describe(topic: str, value: dict[str, Any]) -> str:
    if "event_id" in value:
        lead = value["lead"]
        where = f"stage={lead['stage']} outcome={lead['outcome']}"
        return f"{value['type']:<28} {value['lead_id']:<14} {where}"
    if "notification_id" in value:
        recipient = value["recipient"]["kind"]
        return f"notify {value['template']:<21} {value['lead_id']:<14} to the {recipient}"
    return f"rejected {value['reason']:<19} {value.get('lead_id') or '-':<14} {value['detail']}"


async def run_demo(settings: Settings, answer_timeout: float = 30.0) -> None:
    """Send each step once the previous one has been answered: inbound leads and
    partner actions travel on different topics, so order across them is not kept."""
    outputs = [topic.named(settings.topic_prefix) for topic in OUTBOUND_TOPICS]
    consumer = AIOKafkaConsumer(
        *outputs,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"demo-{uuid.uuid4()}",
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    await producer.start()
    answered: dict[str | None, asyncio.Event] = {}
    printer = asyncio.create_task(_print_outputs(consumer, settings.topic_prefix, answered))
    try:
        print("\nFeeding sample leads and partner actions...\n", flush=True)
        for topic, value in script():
            message_id = str(uuid.uuid4()) if isinstance(value, dict) else None
            answer = answered.setdefault(message_id, asyncio.Event())
            if isinstance(value, dict):
                key, payload = (
                    value["lead_id"].encode(),
                    json.dumps({"message_id": message_id, **value}).encode(),
                )
            else:
                key, payload = b"demo", value
            await producer.send_and_wait(topic.named(settings.topic_prefix), payload, key=key)
            await asyncio.wait_for(answer.wait(), answer_timeout)
        print("\nDemo script done; the service keeps running. Ctrl-C stops it.\n", flush=True)
        await printer
    except asyncio.CancelledError:
        pass
    finally:
        printer.cancel()
        await producer.stop()
        await consumer.stop()


async def _print_outputs(
    consumer: AIOKafkaConsumer, prefix: str, answered: dict[str | None, asyncio.Event]
) -> None:
    async for record in consumer:
        name = record.topic.removeprefix(prefix)
        value = json.loads(record.value)
        print(f"{name:<20} {describe(name, value)}", flush=True)
        cause = value.get("causation_id", value.get("message_id"))
        answered.setdefault(cause, asyncio.Event()).set()
