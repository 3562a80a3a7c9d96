"""The service killed with SIGKILL in the middle of a stream, then restarted."""

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.conftest import Outputs, ServiceProcess, Upstream, service_running, upstream_of

LEADS = 40


@pytest.fixture
def service(settings: Settings) -> Iterator[ServiceProcess]:
    with service_running(settings) as process:
        yield process


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(service) as upstream:
        yield upstream


def count(outputs: Outputs, type_: str, lead_ids: list[str]) -> int:
    return sum(1 for lead_id in lead_ids if type_ in outputs.event_types(lead_id))


async def kill_midway(
    service: ServiceProcess, client: Upstream, type_: str, lead_ids: list[str]
) -> None:
    """SIGKILL once some, not all, of the stream has been handled; then restart."""
    await client.until(
        lambda o: count(o, type_, lead_ids) >= len(lead_ids) // 4, what=f"some {type_}"
    )
    service.kill()
    assert count(client.outputs, type_, lead_ids) < len(lead_ids), (
        "the stream ended before the kill"
    )
    service.start()


async def test_killed_mid_stream_every_lead_ends_once(
    service: ServiceProcess, client: Upstream
) -> None:
    run = uuid.uuid4().hex[:6]
    lead_ids = [f"crash-{run}-{n}" for n in range(LEADS)]
    for lead_id in lead_ids:
        await client.send(Topic.INBOUND, messages.inbound(lead_id=lead_id))
    await kill_midway(service, client, "lead.received", lead_ids)
    await client.until(
        lambda o: count(o, "lead.received", lead_ids) == LEADS, timeout=60, what="all received"
    )

    for lead_id in lead_ids:
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept"))
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "won"))
    await kill_midway(service, client, "lead.won", lead_ids)
    outputs = await client.until(
        lambda o: count(o, "lead.won", lead_ids) == LEADS, timeout=60, what="all won"
    )

    by_lead: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    contents: dict[str, set[bytes]] = defaultdict(set)
    for record in outputs.records:
        value: dict[str, Any] = json.loads(record.value)
        if record.topic.endswith(Topic.EVENTS.value) and value["lead_id"] in lead_ids:
            by_lead[value["lead_id"]][value["type"]].add(value["event_id"])
            contents[value["event_id"]].add(record.value)
    for lead_id in lead_ids:
        ids = by_lead[lead_id]
        assert sorted(ids) == ["lead.accepted", "lead.received", "lead.won"], lead_id
        # A re-published event is the very same event: one id, one content.
        assert all(len(event_ids) == 1 for event_ids in ids.values()), (lead_id, ids)
    assert all(len(versions) == 1 for versions in contents.values())
    assert outputs.values(Topic.REJECTED) == []
