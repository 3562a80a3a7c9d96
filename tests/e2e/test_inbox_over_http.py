"""The partner's side over real HTTP and Kafka: profiles gate leads, alerts reach
the right team, the inbox lists, filters, counts and pages, tokens are checked,
and the responsiveness figures follow what the partner did."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from contracts.topics import Topic
from tests import messages
from tests.e2e.drivers import ServiceProcess, Upstream, scheduler_running, upstream_of
from tests.messages import location


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


async def received(upstream: Upstream, partner: str, **fields: Any) -> str:
    lead = messages.inbound(partner_id=partner, **fields)
    await upstream.send(Topic.INBOUND, lead)
    await upstream.until(
        lambda o: "lead.received" in o.event_types(lead["lead_id"]), what="lead.received"
    )
    return str(lead["lead_id"])


async def acted(upstream: Upstream, partner: str, lead_id: str, name: str, **fields: Any) -> None:
    action = messages.action(lead_id, name, partner_id=partner, **fields)
    await upstream.send(Topic.PARTNER_ACTIONS, action)
    await upstream.until(
        lambda o: any(e["causation_id"] == action["message_id"] for e in o.events(lead_id)),
        what=f"{name} applied",
    )


async def new_partner(upstream: Upstream, *locations: dict[str, Any]) -> str:
    partner = messages.new_id("partner")
    await upstream.profile(messages.profile(partner, list(locations) or None))
    return partner


async def test_a_lead_before_its_partners_profile_is_refused_and_taken_once_it_exists(
    upstream: Upstream,
) -> None:
    partner = messages.new_id("newcomer")
    lead = messages.inbound(partner_id=partner)
    await upstream.send(Topic.INBOUND, lead)
    [refused] = (
        await upstream.until(lambda o: bool(o.rejections(lead["message_id"])), what="rejection")
    ).rejections(lead["message_id"])
    assert refused["reason"] == "partner_profile_missing"
    assert partner in refused["detail"] and "grace" not in refused["detail"].lower()

    await upstream.profile(messages.profile(partner))
    assert (await upstream.api.get(f"/v1/leads/{lead['lead_id']}", partner)).status_code == 404
    await upstream.send(Topic.INBOUND, lead)  # the very same message, sent again
    await upstream.until(lambda o: "lead.received" in o.event_types(lead["lead_id"]))
    answer = await upstream.api.get(f"/v1/leads/{lead['lead_id']}", partner)
    assert answer.status_code == 200 and answer.json()["stage"] == "received"


@pytest.mark.parametrize(
    ("country", "alerted"),
    [
        ("FR", ["paris@team.example"]),
        ("DE", ["berlin@team.example", "sales@team.example", "munich@team.example"]),
        (
            "US",
            [
                "berlin@team.example",
                "sales@team.example",
                "munich@team.example",
                "paris@team.example",
            ],
        ),
    ],
)
async def test_a_new_lead_alerts_the_contacts_of_the_location_serving_the_customer(
    upstream: Upstream, country: str, alerted: list[str]
) -> None:
    partner = await new_partner(
        upstream,
        location("berlin", "DE", "berlin@team.example", "sales@team.example"),
        location("munich", "DE", "munich@team.example", "sales@team.example"),
        location("paris", "FR", "paris@team.example"),
    )
    customer = {**messages.inbound()["customer"], "country": country}
    lead_id = await received(upstream, partner, customer=customer)
    outputs = await upstream.until(
        lambda o: len(o.notifications(lead_id)) >= len(alerted), what="alerts"
    )
    told = outputs.notifications(lead_id)
    assert [n["recipient"]["email"] for n in told] == alerted
    assert {(n["template"], n["recipient"]["kind"], n["recipient"]["id"]) for n in told} == {
        ("new_lead", "partner", partner)
    }
    assert len({n["notification_id"] for n in told}) == len(alerted)


async def test_the_inbox_lists_filters_counts_and_pages(upstream: Upstream) -> None:
    partner = await new_partner(upstream)
    # Oldest first; the inbox shows them newest first.
    inquiry = await received(upstream, partner, received_at=hours_ago(50))
    hot = await received(upstream, partner, received_at=hours_ago(40), contact_requested=True)
    mql = await received(
        upstream, partner, received_at=hours_ago(30), lead_type="marketing_qualified"
    )
    sql = await received(upstream, partner, received_at=hours_ago(20), lead_type="sales_qualified")
    due_soon = await received(
        upstream, partner, received_at=(datetime.now(UTC) - timedelta(days=13)).isoformat()
    )
    await acted(upstream, partner, inquiry, "accept")
    await acted(upstream, partner, mql, "decline")
    await acted(upstream, partner, sql, "favorite")
    api = upstream.api

    async def ids(**params: Any) -> list[str]:
        answer = await api.get("/v1/leads", partner, **params)
        assert answer.status_code == 200, answer.text
        return [item["lead_id"] for item in answer.json()["items"]]

    assert await ids() == [sql, mql, hot, inquiry, due_soon]
    assert await ids(tab="marketplace") == [hot, inquiry, due_soon]
    assert await ids(tab="qualified") == [sql, mql]
    assert await ids(tab="favorites") == [sql]
    assert await ids(stage="archived") == [mql]
    assert await ids(tab="marketplace", stage="received") == [hot, due_soon]
    assert await ids(hot="true") == [hot]
    assert await ids(expiring_within_days=2) == [due_soon]
    assert await ids(lead_type="sales_qualified") == [sql]

    seen, cursor, pages = [], None, 0
    while True:
        page = (await api.get("/v1/leads", partner, limit=2, cursor=cursor)).json()
        seen += [item["lead_id"] for item in page["items"]]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break
    assert (seen, pages) == ([sql, mql, hot, inquiry, due_soon], 3)
    first = (await api.get("/v1/leads", partner, limit=1)).json()["items"][0]
    assert first["customer"]["email"].startswith("grace@fabrikam")  # the partner's own lead
    assert (await api.get("/v1/leads", partner, cursor="not-a-cursor")).status_code == 400

    counts = (await api.get("/v1/leads/counts", partner)).json()
    assert counts["marketplace"] == {"received": 2, "accepted": 1, "archived": 0, "total": 3}
    assert counts["qualified"] == {"received": 1, "accepted": 0, "archived": 1, "total": 2}
    assert counts["favorites"] == {"received": 1, "accepted": 0, "archived": 0, "total": 1}

    detail = (await api.get(f"/v1/leads/{inquiry}", partner)).json()
    assert (detail["stage"], detail["version"]) == ("accepted", 2)
    assert [h["action"] for h in detail["history"]] == ["receive", "accept"]


async def test_another_partners_lead_is_invisible(upstream: Upstream) -> None:
    lead_id = await received(upstream, messages.PARTNER)
    api = upstream.api
    assert (await api.get(f"/v1/leads/{lead_id}", messages.PARTNER)).status_code == 200
    hidden = await api.get(f"/v1/leads/{lead_id}", "partner-2")
    missing = await api.get("/v1/leads/no-such-lead", "partner-2")
    assert (hidden.status_code, hidden.json()["detail"]) == (
        404,
        missing.json()["detail"].replace("no-such-lead", lead_id),
    )
    listed = (await api.get("/v1/leads", "partner-2", limit=100)).json()["items"]
    assert lead_id not in [item["lead_id"] for item in listed]


async def test_a_missing_or_bad_token_is_401_and_a_foreign_role_403(upstream: Upstream) -> None:
    client, settings = upstream.api.client, upstream.settings
    now = datetime.now(UTC)
    claims = {"partner_id": messages.PARTNER, "exp": now + timedelta(hours=1)}

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    forged = jwt.encode(
        {**claims, "role": "referrals_admin"},
        "a-key-this-service-has-never-seen-0123456789",
        algorithm="HS256",
    )
    assert settings.jwt_secret is not None
    key = settings.jwt_secret.get_secret_value()
    expired = jwt.encode(
        {**claims, "role": "referrals_admin", "exp": now - timedelta(minutes=1)}, key
    )
    intruder = jwt.encode({**claims, "role": "customer"}, key)
    assert (await client.get("/v1/leads")).status_code == 401
    assert (await client.get("/v1/leads", headers=bearer("garbage"))).status_code == 401
    assert (await client.get("/v1/leads", headers=bearer(forged))).status_code == 401
    assert (await client.get("/v1/performance", headers=bearer(expired))).status_code == 401
    assert (await client.get("/v1/leads/counts", headers=bearer(intruder))).status_code == 403
    assert (await client.get("/healthz")).status_code == 200


async def test_ready_and_metrics(upstream: Upstream) -> None:
    await received(upstream, messages.PARTNER)
    ready = await upstream.api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"kafka": True, "mongodb": True})
    metrics = (await upstream.api.client.get("/metrics")).text
    assert 'leads_messages_handled_total{outcome="applied",topic="leads.inbound"}' in metrics
    assert "leads_outbox_backlog" in metrics
    assert "leads_message_handling_seconds_bucket" in metrics


async def test_performance_follows_a_scripted_history_and_is_published_coalesced(
    running_service: ServiceProcess,
) -> None:
    settings = running_service.settings.model_copy(
        update={"performance_interval": timedelta(seconds=1)}
    )
    async with upstream_of(running_service) as upstream:
        partner = await new_partner(upstream)
        # Answered after about 2, 10, 30 and 80 hours; one expires, one stays open.
        won = await received(upstream, partner, received_at=hours_ago(2))
        lost = await received(
            upstream, partner, received_at=hours_ago(10), lead_type="sales_qualified"
        )
        declined = await received(upstream, partner, received_at=hours_ago(30))
        slow = await received(upstream, partner, received_at=hours_ago(80))
        expired = await received(upstream, partner, received_at=messages.overdue())
        await received(upstream, partner)
        await acted(upstream, partner, won, "accept")
        await acted(upstream, partner, won, "won")
        await acted(upstream, partner, lost, "accept")
        await acted(upstream, partner, lost, "lost", reason="chose_another_vendor")
        await acted(upstream, partner, declined, "decline", reason="timeline_too_short")
        await acted(upstream, partner, slow, "accept")
        await upstream.send(Topic.COMMANDS, messages.command(expired, "expire"))
        await upstream.until(lambda o: "lead.expired" in o.event_types(expired))

        with scheduler_running(settings):
            # Served as the scheduler last computed them: within an interval of the change.
            answer = await upstream.api.until(
                "/v1/performance",
                lambda r: r.json()["overall"]["expired"] == 1,
                partner=partner,
            )
            figures = answer.json()
            overall = figures["overall"]
            assert figures["computed_at"] is not None
            assert {
                k: overall[k] for k in ("leads", "open", "answered", "accepted", "declined")
            } == {
                "leads": 6,
                "open": 1,
                "answered": 4,
                "accepted": 3,
                "declined": 1,
            }
            assert (overall["expired"], overall["won"], overall["lost"]) == (1, 1, 1)
            assert 20 * 3600 <= overall["median_response_seconds"] <= 20 * 3600 + 600
            assert 80 * 3600 <= overall["p90_response_seconds"] <= 80 * 3600 + 600
            assert overall["answered_within_24h"] == 0.4  # 2 of 5 settled
            assert overall["answered_within_72h"] == 0.6
            assert (overall["accept_rate"], overall["expiry_rate"], overall["win_rate"]) == (
                0.75,
                0.2,
                0.5,
            )
            assert overall["decline_reasons"] == {"timeline_too_short": 1}
            assert overall["won_value"] == [{"currency": "EUR", "amount": "125000.50"}]
            assert set(figures["by_lead_type"]) == {"customer_inquiry", "sales_qualified"}
            assert figures["by_lead_type"]["sales_qualified"]["win_rate"] == 0.0

            outputs = await upstream.until(
                lambda o: any(
                    u["partner_id"] == partner and u["overall"] == overall
                    for u in o.values(Topic.PERFORMANCE)
                ),
                what="partner.performance_updated",
            )
        updates = [u for u in outputs.values(Topic.PERFORMANCE) if u["partner_id"] == partner]
        # Thirteen lead changes, coalesced into one update per changed round.
        assert len(updates) < 4
        assert updates[-1]["type"] == "partner.performance_updated"
        assert len({u["event_id"] for u in updates}) == len(updates)
