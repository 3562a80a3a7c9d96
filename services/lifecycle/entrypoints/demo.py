"""`make run`'s demo: sample leads and partner actions in, events and notifications out.

Talks to the service only through Kafka, as an upstream system would.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import OUTBOUND_TOPICS, Topic
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.tokens import issue
from services.lifecycle.settings import Settings

PARTNER = "contoso-partners"
ADMIN = {"user_id": "ada", "role": "referrals_admin"}

DEMO_DEADLINES = {
    "early_action_grace": "PT5S",
    "reminder_offsets": "PT20S,PT10S",
    "sweep_interval": "PT2S",
    "command_retry_after": "PT10S",
    "performance_interval": "PT5S",
}
"""Settings shortened to seconds for `leads dev --demo`. The response and contact
windows keep their defaults, so the leads on the Leads page wait for you; two leads
are backdated instead, so that one expires and one cools down while you watch."""
LEFT_ALONE = "demo-left-alone"
LEFT_ALONE_FOR = timedelta(seconds=40)
"""How long after it arrives the lead nobody answers expires."""
COOLING = "demo-adventure"
COOLING_FOR = timedelta(seconds=15)
"""How long after it arrives this lead's contact request cools down."""


FABRIKAM = {
    "company_name": "Fabrikam",
    "contact_name": "Grace Hopper",
    "email": "grace@fabrikam.example",
    "country": "DE",
    "company_size": "50-249",
}


def _lead(
    lead_id: str, lead_type: str, customer: dict[str, Any] = FABRIKAM, **extra: Any
) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "partner_id": PARTNER,
        "lead_type": lead_type,
        "referrer": {"kind": "microsoft", "id": "ms-marketing", "email": "leads@example.com"},
        "customer": customer,
        "need": "Move our ERP to the cloud before the next fiscal year.",
        **extra,
    }


def _customer(company: str, contact: str, country: str, size: str, industry: str) -> dict[str, Any]:
    domain = company.lower().replace(" ", "-")
    email = f"{contact.split()[0].lower()}@{domain}.example"
    return {
        "company_name": company,
        "contact_name": contact,
        "email": email,
        "phone": "+1 425 555 0100",
        "country": country,
        "company_size": size,
        "industry": industry,
    }


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def page_leads(contact_window: timedelta) -> list[tuple[Topic, dict[str, Any] | bytes]]:
    """Leads waiting on the Leads page: a hot one, one whose contact request cools
    down soon, one about to expire, one accepted with its deal."""
    cooling_since = datetime.now(UTC) - contact_window + COOLING_FOR
    return [
        (
            Topic.INBOUND,
            _lead(
                "demo-northwind",
                "customer_inquiry",
                _customer("Northwind Traders", "Nancy Davolio", "US", "250-999", "Retail"),
                need="Roll out Teams Phone to 300 seats across three offices by summer.",
                contact_requested=True,
            ),
        ),
        (
            Topic.INBOUND,
            _lead(
                "demo-tailspin",
                "marketing_qualified",
                _customer("Tailspin Toys", "Lars Olsen", "DK", "10-49", "Manufacturing"),
                need="A Dynamics 365 Sales pilot for a 40-person sales team.",
                campaign_id="spring-crm-2027",
            ),
        ),
        (
            Topic.INBOUND,
            _lead(
                COOLING,
                "customer_inquiry",
                _customer("Adventure Works", "Jean Dupont", "FR", "50-249", "Outdoor equipment"),
                need="Security review and a Microsoft 365 E5 deployment for 150 users.",
                contact_requested=True,
                received_at=cooling_since.isoformat(),
            ),
        ),
        (
            Topic.INBOUND,
            _lead(
                "demo-litware",
                "customer_inquiry",
                _customer("Litware", "Ana Souza", "BR", "10-49", "Software"),
                need="Move our file shares to SharePoint and train the staff.",
                received_at=_ago(12),
            ),
        ),
        (
            Topic.INBOUND,
            _lead(
                "demo-wideworld",
                "sales_qualified",
                _customer("Wide World Importers", "Mei Chen", "NL", "250-999", "Logistics"),
                need="Consolidate 12 SQL Server instances into Azure SQL Managed Instance.",
            ),
        ),
        (
            Topic.PARTNER_ACTIONS,
            _action(
                "demo-wideworld",
                "accept",
                deal={
                    "name": "Wide World SQL consolidation",
                    "value": {"amount": "85000.00", "currency": "EUR"},
                    "estimated_close_date": "2027-05-31",
                    "notes": "Assessment first, then two migration waves.",
                },
                contacts=[{"name": "Ada", "email": "ada@contoso.example"}],
            ),
        ),
    ]


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


def script(settings: Settings) -> list[tuple[Topic, dict[str, Any] | bytes]]:
    """A lead nobody answers, a lead won, a lead declined, leads for the Leads page,
    and four refusals."""
    deal = {
        "name": "Fabrikam ERP migration",
        "value": {"amount": "120000.00", "currency": "EUR"},
        "estimated_close_date": "2027-03-31",
    }
    # Backdated: its deadline falls LEFT_ALONE_FOR after it arrives.
    left_alone_since = datetime.now(UTC) - settings.response_window + LEFT_ALONE_FOR
    return [
        (Topic.INBOUND, {**_lead("demo-no-profile", "customer_inquiry"), "partner_id": "newcomer"}),
        (
            Topic.INBOUND,
            _lead(
                LEFT_ALONE,
                "sales_qualified",
                received_at=left_alone_since.isoformat(),
            ),
        ),
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
        *page_leads(settings.contact_request_window),
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
        **KafkaConnection.of(settings).options(),
        auto_offset_reset="earliest",
        group_id=f"demo-{uuid.uuid4()}",
    )
    producer = AIOKafkaProducer(**KafkaConnection.of(settings).options())
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
        for topic, value in script(settings):
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
        print(
            f"\nDemo script done. Nobody answers {LEFT_ALONE}: watch it get its reminders "
            f"and expire about {LEFT_ALONE_FOR.total_seconds():.0f} s after it arrived, and "
            f"its sender be told; {COOLING}'s contact request cools down "
            f"{COOLING_FOR.total_seconds():.0f} s after it arrived. The service keeps "
            "running; Ctrl-C stops it.\n\n"
            f"Open {PARTNER}'s Leads page (this link signs you in):\n  {sign_in_link(settings)}\n\n"
            "Or read the partner's inbox from another terminal:\n"
            f'  curl -H "Authorization: Bearer $(.venv/bin/leads token --partner {PARTNER})" '
            f"{_base_url(settings)}/v1/leads\n",
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


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host
    return f"http://{host}:{settings.http_port}"


def sign_in_link(settings: Settings, partner: str = PARTNER) -> str:
    """The Leads page, signed in as the partner's referrals admin. The token is in the
    fragment, which browsers never send to a server, so no server log sees it."""
    token = issue(settings, partner, "referrals_admin", datetime.now(UTC))
    return f"{_base_url(settings)}/#token={token}"
