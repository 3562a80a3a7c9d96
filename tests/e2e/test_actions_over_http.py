"""A partner acts over HTTP on a real `leads serve`: every kind of action goes to
Kafka and comes back applied or refused; retries, versions, bad bodies, foreign
leads and a broker that does not answer behave as the API promises."""

import json
import os
import signal
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import (
    ReadApi,
    ServiceProcess,
    Upstream,
    scheduler_running,
    service_running,
    upstream_of,
)
from tests.e2e.test_inbox_over_http import received
from tests.servers import isolated_settings

PARTNER = messages.PARTNER


def key() -> str:
    return str(uuid.uuid4())


async def act(
    api: ReadApi,
    lead_id: str,
    body: dict[str, Any] | bytes,
    idempotency_key: str | None = None,
    partner: str = PARTNER,
    if_match: str | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.token(partner)}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if if_match is not None:
        headers["If-Match"] = if_match
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers["Content-Type"] = "application/json"
    return await api.client.post(f"/v1/leads/{lead_id}/actions", content=content, headers=headers)


async def settled(api: ReadApi, location: str, partner: str = PARTNER) -> dict[str, Any]:
    """The action's status once the lifecycle rules have decided it."""
    answer = await api.until(
        location,
        lambda r: r.status_code == 200 and r.json()["status"] != "pending",
        partner=partner,
    )
    return dict(answer.json())


async def done(api: ReadApi, lead_id: str, body: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Act, and wait for the outcome."""
    answer = await act(api, lead_id, body, options.pop("idempotency_key", key()), **options)
    assert answer.status_code == 202, answer.text
    return await settled(api, answer.headers["location"], options.get("partner", PARTNER))


async def published(settings: Settings, message_id: str) -> list[dict[str, Any]]:
    """The records on leads.partner-actions with this message_id, up to the topic's end."""
    consumer = AIOKafkaConsumer(**KafkaConnection.of(settings).options(), group_id=None)
    await consumer.start()
    try:
        name = Topic.PARTNER_ACTIONS.named(settings.topic_prefix)
        await consumer.topics()  # loads the cluster's metadata
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []]
        assert partitions, "no such topic"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Any] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(batch)
    finally:
        await consumer.stop()
    values = [json.loads(record.value) for record in found]
    return [value for value in values if value.get("message_id") == message_id]


ACCEPT: dict[str, Any] = {
    "action": "accept",
    "deal": messages.DEAL,
    "contacts": [{"name": "Max", "email": "max@contoso.example"}],
}


async def test_every_kind_of_action_round_trips(upstream: Upstream) -> None:
    api = upstream.api
    won, declined, lost = [await received(upstream, PARTNER) for _ in range(3)]
    steps = [
        (won, {"action": "favorite"}, "lead.favorited"),
        (won, {"action": "unfavorite"}, "lead.unfavorited"),
        (won, ACCEPT, "lead.accepted"),
        (won, {"action": "update", "changes": {"notes": "CFO on board"}}, "lead.updated"),
        (
            won,
            {"action": "add_contacts", "contacts": [{"name": "Lin", "email": "lin@x.example"}]},
            "lead.contacts_added",
        ),
        (won, {"action": "won", "notes": "Signed"}, "lead.won"),
        (declined, {"action": "decline", "reason": "other"}, "lead.declined"),
        (declined, {"action": "undo_decline"}, "lead.reopened"),
        (declined, {"action": "decline", "reason": "timeline_too_short"}, "lead.declined"),
        (lost, ACCEPT, "lead.accepted"),
        (lost, {"action": "lost", "reason": "chose_another_vendor"}, "lead.lost"),
    ]
    for lead_id, body, event in steps:
        status = await done(api, lead_id, body)
        assert (status["status"], status["event"], status["lead_id"]) == ("applied", event, lead_id)
        lead = (await api.get(f"/v1/leads/{lead_id}")).json()
        assert lead["version"] == status["version"]
        assert lead["history"][-1]["actor"] == {
            "kind": "partner_user",
            "id": f"{PARTNER}:referrals_admin",
            "role": "referrals_admin",
        }
    final = (await api.get(f"/v1/leads/{won}")).json()
    assert (final["stage"], final["outcome"]) == ("archived", "won")
    assert final["deal"]["notes"] == "CFO on board"
    assert [c["email"] for c in final["contacts"]] == ["max@contoso.example", "lin@x.example"]
    gone = (await api.get(f"/v1/leads/{declined}")).json()
    assert (gone["outcome"], gone["decline_reason"]) == ("declined", "timeline_too_short")
    assert gone["customer"]["email"] is None
    assert (await api.get(f"/v1/leads/{lost}")).json()["outcome"] == "lost"


async def test_the_same_idempotency_key_twice_is_one_action(upstream: Upstream) -> None:
    lead_id = await received(upstream, PARTNER)
    same = key()
    first = await act(upstream.api, lead_id, ACCEPT, same)
    again = await act(upstream.api, lead_id, ACCEPT, same)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() == {"message_id": f"{PARTNER}:{same}", "status": "pending"}
    assert first.headers["location"] == again.headers["location"]
    assert (await settled(upstream.api, first.headers["location"]))["event"] == "lead.accepted"
    assert len(await published(upstream.settings, f"{PARTNER}:{same}")) == 1
    outputs = await upstream.until(lambda o: "lead.accepted" in o.event_types(lead_id))
    assert outputs.event_types(lead_id) == ["lead.received", "lead.accepted"]

    other = await act(upstream.api, lead_id, {"action": "won"}, same)
    assert other.status_code == 422 and "another request" in other.json()["detail"]


async def test_an_action_without_a_usable_idempotency_key_is_refused(upstream: Upstream) -> None:
    lead_id = await received(upstream, PARTNER)
    for bad in (None, "", "has spaces", "x" * 64):
        answer = await act(upstream.api, lead_id, {"action": "favorite"}, bad)
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"] == "application/problem+json"
        assert "Idempotency-Key" in answer.json()["detail"]
    assert upstream.outputs.event_types(lead_id) == ["lead.received"]


async def test_an_old_if_match_is_refused_stale_version(upstream: Upstream) -> None:
    api = upstream.api
    lead_id = await received(upstream, PARTNER)
    read = await api.get(f"/v1/leads/{lead_id}")
    assert read.headers["etag"] == '"1"'
    status = await done(api, lead_id, {"action": "favorite"}, if_match='"1"')
    assert (status["status"], status["version"]) == ("applied", 2)
    assert (await api.get(f"/v1/leads/{lead_id}")).headers["etag"] == '"2"'

    stale = await done(api, lead_id, ACCEPT, if_match=read.headers["etag"])
    assert (stale["status"], stale["reason"]) == ("rejected", "stale_version")
    assert "version 2" in stale["detail"]
    assert (await api.get(f"/v1/leads/{lead_id}")).json()["stage"] == "received"
    bad = await act(api, lead_id, ACCEPT, key(), if_match='W/"2"')
    assert bad.status_code == 400 and "If-Match" in bad.json()["detail"]


async def test_a_body_that_is_not_an_action_is_422_without_its_values(upstream: Upstream) -> None:
    api = upstream.api
    lead_id = await received(upstream, PARTNER)
    secret = "Ada Lovelace ada@secret.example"
    cases: dict[str, dict[str, Any] | bytes] = {
        "deal.name": {**ACCEPT, "deal": {**messages.DEAL, "name": secret * 20}},
        "deal.value.amount": {
            **ACCEPT,
            "deal": {**messages.DEAL, "value": {"amount": 1000, "currency": "EUR"}},
        },
        "contacts.0.email": {**ACCEPT, "contacts": [{"name": "Ada", "email": secret}]},
        "reason": {"action": "decline", "reason": secret},
        "action": {"action": secret},
        "partner_id": {"action": "favorite", "partner_id": "partner-2"},
        "actor": {"action": "favorite", "actor": {"user_id": "boss", "role": "referrals_admin"}},
        "": b"{not json " + secret.encode(),
    }
    keys = []
    for field, body in cases.items():
        keys.append(key())
        answer = await act(api, lead_id, body, keys[-1])
        assert answer.status_code == 422, field
        problem = answer.json()
        assert answer.headers["content-type"] == "application/problem+json"
        assert field in [e["name"] for e in problem["errors"]], (field, problem)
        assert all(e["location"] == "body" for e in problem["errors"])
        assert "secret" not in answer.text and "Ada" not in answer.text, answer.text
    huge = await act(api, lead_id, {"action": "won", "notes": "x" * 70_000}, key())
    assert huge.status_code == 413
    for unused in keys:
        assert not await published(upstream.settings, f"{PARTNER}:{unused}")
    assert upstream.outputs.event_types(lead_id) == ["lead.received"]


async def test_an_action_on_another_partners_lead_ends_unknown_lead_seen_by_its_sender_only(
    running_service: ServiceProcess, upstream: Upstream
) -> None:
    api = upstream.api
    lead_id = await received(upstream, PARTNER)
    snoop = await act(
        api, lead_id, {"action": "decline", "reason": "spam_or_abuse"}, key(), "partner-2"
    )
    assert snoop.status_code == 202
    location = snoop.headers["location"]
    pending = await api.get(location, "partner-2")
    assert pending.json()["status"] == "pending"  # held for the early-action grace
    sweeping = running_service.settings.model_copy(
        update={"sweep_interval": timedelta(seconds=0.5)}
    )
    with scheduler_running(sweeping):
        status = await settled(api, location, "partner-2")
    assert (status["status"], status["reason"]) == ("rejected", "unknown_lead")
    assert status["detail"] == f"partner partner-2 has no lead {lead_id}"

    as_owner = await api.get(location, PARTNER)
    unknown = await api.get(f"/v1/actions/{PARTNER}:{key()}", PARTNER)
    assert as_owner.status_code == unknown.status_code == 404
    assert as_owner.json() == unknown.json()
    assert (await api.get(f"/v1/leads/{lead_id}")).json()["stage"] == "received"


async def test_when_kafka_does_not_answer_an_action_is_503_and_nothing_is_published() -> None:
    # Servers of its own: their broker is frozen (SIGSTOP) and thawed, its records kept.
    with (
        embedded_servers() as servers,
        service_running(isolated_settings(servers, "e2e")) as service,
    ):
        assert servers.kafka_pid is not None
        async with upstream_of(service) as upstream:
            api = upstream.api
            lead_id = await received(upstream, PARTNER)
            refused_key = key()
            started = time.monotonic()
            os.kill(servers.kafka_pid, signal.SIGSTOP)
            try:
                answer = await act(api, lead_id, ACCEPT, refused_key)
            finally:
                os.kill(servers.kafka_pid, signal.SIGCONT)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"].isdigit()
            assert "Idempotency-Key" in answer.json()["detail"]
            assert time.monotonic() - started < 10

            later = await done(api, lead_id, {"action": "favorite"})
            assert later["status"] == "applied"  # Kafka is back and the pipeline runs
            assert not await published(upstream.settings, f"{PARTNER}:{refused_key}")
            assert (await api.get(f"/v1/actions/{PARTNER}:{refused_key}")).status_code == 404

            retried = await done(api, lead_id, ACCEPT, idempotency_key=refused_key)
            assert (retried["status"], retried["event"]) == ("applied", "lead.accepted")
