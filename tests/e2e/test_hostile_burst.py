"""A burst of hostile records on one key, then a good lead on the same key: every
hostile record is answered once, the good lead behind them is received, nothing
quotes the personal data they carried, and the service's log stays small."""

import uuid

from contracts.topics import Topic
from services.dev_servers import Servers
from tests import messages
from tests.e2e.drivers import ServiceProcess, process_running, upstream_of
from tests.hostile import KINDS, MARKER, burst
from tests.servers import isolated_settings

BURST = 300
MAX_LOG_BYTES = 64 * 1024


async def test_a_hostile_burst_is_answered_and_the_lead_behind_it_goes_through(
    servers: Servers,
) -> None:
    service = ServiceProcess(isolated_settings(servers, "hostile"))
    key = f"hostile-{uuid.uuid4().hex[:8]}"
    good = messages.inbound(lead_id=key)
    hostile = list(burst(BURST))
    assert {bytes(v) for v in hostile} == set(KINDS.values())
    with process_running(service):
        log_before = sum(len(line) for line in service.lines)
        async with upstream_of(service) as upstream:
            for value in hostile:
                await upstream.send(Topic.INBOUND, value, key=key)
            await upstream.send(Topic.INBOUND, good)
            outputs = await upstream.until(
                lambda o: (
                    "lead.received" in o.event_types(key) and len(o.values(Topic.REJECTED)) >= BURST
                ),
                timeout=120,
                what="every hostile record answered and the good lead received",
            )
            rejected = outputs.values(Topic.REJECTED)
            assert len(rejected) == BURST  # exactly one answer each
            assert {r["reason"] for r in rejected} == {"malformed"}
            records = [r for r in outputs.records if r.topic.endswith(Topic.REJECTED.value)]
            assert len({dict(r.headers)["ce_id"] for r in records}) == BURST  # none twice
            assert all(MARKER.encode() not in r.value for r in records)
        logged = service.lines
    assert all(MARKER not in line for line in logged)
    assert sum(len(line) for line in logged) - log_before < MAX_LOG_BYTES
