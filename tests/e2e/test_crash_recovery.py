"""The service killed with SIGKILL several times in the middle of a stream, then restarted.

Leads and their actions are published back to back, as upstream systems and
partners do: after a restart the consumer may read an accept before its lead
(the topics are read side by side). The accept waits for its lead, and every
lead still ends won, each transition published once.
"""

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from contracts.topics import Topic
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.conftest import Outputs, ServiceProcess, Upstream, service_running, upstream_of

LEADS = 150
KILLS_AT = (0.15, 0.4, 0.65)
"""Share of the leads won when each SIGKILL comes."""


@pytest.fixture
def service(settings: Settings) -> Iterator[ServiceProcess]:
    # Restarts take seconds: an action must wait for its lead longer than that. Small
    # batches make progress visible step by step, so the kills land mid-stream.
    patient = settings.model_copy(
        update={
            "early_action_grace": timedelta(minutes=10),
            "batch_max": 5,
            "kafka_max_poll_records": 20,
        }
    )
    with service_running(patient) as process:
        yield process


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(service) as upstream:
        yield upstream


def count(outputs: Outputs, type_: str, lead_ids: list[str]) -> int:
    return sum(1 for lead_id in lead_ids if type_ in outputs.event_types(lead_id))


def won_at_least(n: float, lead_ids: list[str]) -> Callable[[Outputs], bool]:
    return lambda outputs: count(outputs, "lead.won", lead_ids) >= n


async def test_killed_mid_stream_every_lead_ends_once(
    service: ServiceProcess, client: Upstream
) -> None:
    run = uuid.uuid4().hex[:6]
    lead_ids = [f"crash-{run}-{n}" for n in range(LEADS)]
    for lead_id in lead_ids:
        await client.send(Topic.INBOUND, messages.inbound(lead_id=lead_id))
    for lead_id in lead_ids:
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept"))
        await client.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "won"))

    kills = 0
    for share in KILLS_AT:
        await client.until(
            won_at_least(share * LEADS, lead_ids), timeout=60, what=f"{share:.0%} won"
        )
        if count(client.outputs, "lead.won", lead_ids) < LEADS:
            service.kill()
            kills += 1
            service.start()
    assert kills >= 2, "the stream ended before the service could be killed mid-way"
    outputs = await client.until(
        lambda o: count(o, "lead.won", lead_ids) == LEADS, timeout=120, what="all won"
    )

    by_lead = outputs.event_ids()
    contents: dict[str, set[bytes]] = defaultdict(set)
    for record in outputs.records:
        value: dict[str, Any] = json.loads(record.value)
        if record.topic.endswith(Topic.EVENTS.value) and value["lead_id"] in lead_ids:
            contents[value["event_id"]].add(record.value)
    for lead_id in lead_ids:
        ids = by_lead[lead_id]
        assert sorted(ids) == ["lead.accepted", "lead.received", "lead.won"], lead_id
        # A re-published event is the very same event: one id, one content.
        assert all(len(event_ids) == 1 for event_ids in ids.values()), (lead_id, ids)
    assert all(len(versions) == 1 for versions in contents.values())
    assert outputs.values(Topic.REJECTED) == []
