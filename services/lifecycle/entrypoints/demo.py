"""`make run`'s demo: sample leads and partner actions in, events and notifications out.

Talks to the service only through Kafka, as an upstream system would.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import OUTBOUND_TOPICS, Topic
from services.lifecycle.adapters.tokens import issue
from services.lifecycle.settings import Settings

PARTNER = "contoso-partners"
ADMIN = {"user_id": "ada", "role": "referrals_admin"}

DEMO_DEADLINES = {
    "response_window": "PT40S",
    "contact_request_window": "PT15S",
    "reminder_offsets": "PT20S,PT10S",
    "sweep_interval": "PT2S",
    "command_retry_after": "PT10S",
    "performance_interval": "PT5S",
}
"""Deadlines shortened to seconds for `leads dev --demo`, so the lead nobody answers
cools down, is reminded twice and expires while you watch."""
LEFT_ALONE = "demo-left-alone"


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


def profile() -> dict[str, Any]:
    """The demo partner's business profile: alerts for German customers go to Berlin."""
    return {
        "message_id": str(uuid.uuid4()),
        "partner_id": PARTNER,
        "name": "Contoso Partners",
        "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "locations": [
            {
                "location_id": "berlin",
                "country": "DE",
                "contacts": [
                    {"name": "Ada", "email": "ada@contoso.example"},
                    {"name": "Lin", "email": "lin@contoso.example"},
                ],
            },
            {
                "location_id": "seattle",
                "country": "US",
                "contacts": [{"name": "Sam", "email": "sam@contoso.example"}],
            },
        ],
        "preferences": {"company_sizes": ["50-249"], "countries": ["DE", "US"]},
    }


def script() -> list[tuple[Topic, dict[str, Any] | bytes]]:
    """A lead nobody answers, a lead won, a lead declined, and four refusals."""
    deal = {
        "name": "Fabrikam ERP migration",
        "value": {"amount": "120000.00", "currency": "EUR"},
        "estimated_close_date": "2027-03-31",
    }
    return [
        (Topic.INBOUND, {**_lead("demo-no-profile", "customer_inquiry"), "partner_id": "newcomer"}),
        (Topic.INBOUND, _lead(LEFT_ALONE, "sales_qualified", contact_requested=True)),
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
        (Topic.PARTNER_ACTIONS, _action("demo-won", "update", changes={"notes": "too late"})),
        (
            Topic.PARTNER_ACTIONS,
            {**_action("demo-declined", "favorite"), "partner_id": "someone-else"},
        ),
        (Topic.INBOUND, b"{this is not json"),
    ]


def describe(topic: str, value: dict[str, Any]) -> str:
    if value.get("type") == "partner.performance_updated":
        overall = value["overall"]
        return (
            f"{value['type']:<28} {value['partner_id']:<16} leads={overall['leads']} "
            f"accept_rate={overall['accept_rate']} win_rate={overall['win_rate']}"
        )
    if "event_id" in value:
        lead = value["lead"]
        where = f"stage={lead['stage']} outcome={lead['outcome']}"
        return f"{value['type']:<28} {value['lead_id']:<16} {where}"
    if "notification_id" in value:
        recipient = value["recipient"]["kind"]
        email = value["recipient"].get("email") if recipient == "partner" else None
        remaining = value["data"].get("remaining")
        left = f" ({remaining} left)" if remaining else ""
        to = f"{recipient} {email}" if email else recipient
        return f"notify {value['template']:<21} {value['lead_id']:<16} to the {to}{left}"
    return f"rejected {value['reason']:<19} {value.get('lead_id') or '-':<16} {value['detail']}"


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
        print(f"\nPublishing the business profile of {PARTNER}...", flush=True)
        sent = profile()
        await producer.send_and_wait(
            Topic.PROFILES.named(settings.topic_prefix),
            json.dumps(sent).encode(),
            key=PARTNER.encode(),
        )
        await asyncio.to_thread(_wait_for_profile, settings, answer_timeout)
        print("Feeding sample leads and partner actions...\n", flush=True)
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
        window = settings.response_window.total_seconds()
        print(
            f"\nDemo script done. Nobody answers {LEFT_ALONE}: watch it cool down, get its "
            f"reminders and expire about {window:.0f} s after it arrived, and its sender be "
            "told. The service keeps running; Ctrl-C stops it.\n\n"
            "Read the partner's inbox meanwhile, from another terminal:\n"
            f'  curl -H "Authorization: Bearer $(.venv/bin/leads token --partner {PARTNER})" '
            f"http://{settings.http_host}:{settings.http_port}/v1/leads\n",
            flush=True,
        )
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
        at = datetime.now().strftime("%H:%M:%S")
        print(f"{at}  {name:<20} {describe(name, value)}", flush=True)
        cause = value.get("causation_id", value.get("message_id"))
        answered.setdefault(cause, asyncio.Event()).set()


def _wait_for_profile(settings: Settings, timeout: float) -> None:
    """Profiles produce no output: ask the read API until it has the demo partner's."""
    token = issue(settings, PARTNER, "referrals_admin", datetime.now(UTC))
    request = urllib.request.Request(
        f"http://{settings.http_host}:{settings.http_port}/v1/profile",
        headers={"Authorization": f"Bearer {token}"},
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5):
                return
        except urllib.error.HTTPError as answer:
            if answer.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)
