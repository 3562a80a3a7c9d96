"""Builders of valid contract messages for tests; override any field."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from contracts.topics import Topic
from services.lifecycle.service_layer.messages import Delivery

PARTNER = "partner-1"
ADMIN = {"user_id": "user-1", "role": "referrals_admin"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_customers = count(1_000_000)


def inbound(lead_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A new lead of a customer of its own (e-mail, domain and phone), so that no two
    leads look like duplicates unless a test says so."""
    n = next(_customers)
    message: dict[str, Any] = {
        "message_id": new_id("m"),
        "lead_id": lead_id or new_id("lead"),
        "partner_id": PARTNER,
        "lead_type": "customer_inquiry",
        "referrer": {"kind": "microsoft", "id": "ms-1", "email": "referrals@example.com"},
        "customer": {
            "company_name": "Fabrikam",
            "contact_name": "Grace Hopper",
            "email": f"grace@fabrikam-{n}.example",
            "phone": f"+49 30 {n}",
            "country": "DE",
            "company_size": "50-249",
        },
        "need": "Cloud migration of our ERP system.",
        "contact_requested": False,
    }
    message.update(overrides)
    return message


def reopen(lead_id: str, **overrides: Any) -> dict[str, Any]:
    """The lead's referrer (as `inbound` names it) reopens it."""
    message: dict[str, Any] = {
        "message_type": "reopen",
        "message_id": new_id("r"),
        "lead_id": lead_id,
        "referrer_id": "ms-1",
        "reason": "wrong_decline",
    }
    message.update(overrides)
    return message


def overdue(days: int = 15) -> str:
    """A `received_at` so far back that the response window has passed."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


DEAL = {
    "name": "Fabrikam ERP",
    "value": {"amount": "125000.50", "currency": "EUR"},
    "estimated_close_date": "2027-06-30",
    "notes": "Wants a pilot first",
}


def action(lead_id: str, name: str, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": new_id("m"),
        "lead_id": lead_id,
        "partner_id": PARTNER,
        "actor": ADMIN,
        "action": name,
    }
    if name == "accept":
        message["deal"] = DEAL
    if name == "decline":
        message["reason"] = "budget_not_adequate"
    message.update(fields)
    return message


def command(lead_id: str, name: str, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": new_id("c"),
        "lead_id": lead_id,
        "command": name,
        "due_at": datetime.now(UTC).isoformat(),
    }
    if name == "remind":
        message["remaining"] = "PT24H"
    message.update(fields)
    return message


def location(location_id: str, country: str, *emails: str) -> dict[str, Any]:
    contacts = [{"name": email.split("@")[0].title(), "email": email} for email in emails]
    return {"location_id": location_id, "country": country, "contacts": contacts}


def profile(
    partner_id: str = PARTNER,
    locations: list[dict[str, Any]] | None = None,
    updated_at: datetime | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A partner's business profile; by default one location in Germany with one contact."""
    message: dict[str, Any] = {
        "message_id": new_id("p"),
        "partner_id": partner_id,
        "name": f"{partner_id} Ltd",
        # To the millisecond, as the service stores it.
        "updated_at": (updated_at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "locations": locations
        if locations is not None
        else [location("berlin", "DE", f"alerts@{partner_id}.example")],
        "preferences": {"company_sizes": ["50-249"], "countries": ["DE", "AT"]},
    }
    message.update(overrides)
    return message


_offsets = count()


def delivery(topic: Topic, value: dict[str, Any] | bytes, offset: int | None = None) -> Delivery:
    """A Kafka record as the consumer hands it over, each at an offset of its own."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Delivery(topic, topic.value, 0, next(_offsets) if offset is None else offset, raw)
