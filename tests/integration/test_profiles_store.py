"""Partner profiles consumed through the lead service into MongoDB: newest `updated_at` wins."""

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.topics import Topic
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.service_layer.lead_service import LeadService
from tests import messages
from tests.messages import delivery

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def profile(name: str, updated_at: datetime, partner_id: str = "partner-p") -> dict[str, Any]:
    berlin = messages.location("berlin", "DE", "ada@contoso.example")
    return messages.profile(partner_id, [berlin], updated_at, name=name)


async def handle(service: LeadService, value: dict[str, Any]) -> str:
    return (await service.decide_and_commit_one(delivery(Topic.PROFILES, value))).outcome


async def stored_name(store: MongoStore, partner_id: str = "partner-p") -> str | None:
    found = await store.load_profile(partner_id)
    return found.name if found else None


async def test_a_profile_is_stored_and_read_back_whole(
    service: LeadService, store: MongoStore
) -> None:
    sent = profile("Contoso", T0)
    assert await handle(service, sent) == "applied"
    found = await store.load_profile("partner-p")
    assert found is not None
    assert found.updated_at == T0
    assert [c.email for c in found.locations[0].contacts] == ["ada@contoso.example"]
    assert found.preferences.countries == ["DE", "AT"]


async def test_a_newer_profile_replaces_an_older_one_and_an_older_one_changes_nothing(
    service: LeadService, store: MongoStore
) -> None:
    assert await handle(service, profile("Contoso", T0)) == "applied"
    assert await handle(service, profile("Contoso Ltd", T0 + timedelta(hours=1))) == "applied"
    assert await handle(service, profile("Contoso (stale)", T0 + timedelta(minutes=30))) == (
        "no_change"
    )
    assert await handle(service, profile("Contoso (same time)", T0 + timedelta(hours=1))) == (
        "no_change"
    )
    assert await stored_name(store) == "Contoso Ltd"


async def test_the_same_profile_message_twice_is_applied_once(
    service: LeadService, store: MongoStore
) -> None:
    sent = profile("Contoso", T0)
    outcomes = [await handle(service, sent) for _ in range(2)]
    assert outcomes == ["applied", "duplicate"]
    assert await store.database["partner_profiles"].count_documents({"_id": "partner-p"}) == 1


async def test_a_profile_for_another_partner_leaves_the_first_alone(
    service: LeadService, store: MongoStore
) -> None:
    await handle(service, profile("Contoso", T0))
    await handle(service, profile("Fabrikam Partners", T0, partner_id="partner-q"))
    assert (await stored_name(store), await stored_name(store, "partner-q")) == (
        "Contoso",
        "Fabrikam Partners",
    )
