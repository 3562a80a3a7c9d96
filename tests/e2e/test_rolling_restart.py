"""Rolling restarts: two replicas in one consumer group, a steady stream of leads and
actions, each replica in turn stopped with SIGTERM and replaced, as Kubernetes does.
Each stops quickly and quietly, and every lead still ends where it should, each
transition published under one id."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

from contracts.topics import Topic
from services.dev_servers import Servers, free_port
from services.lifecycle.settings import Settings
from tests import messages
from tests.e2e.drivers import Outputs, ReadApi, ServiceProcess, Upstream, upstream_of
from tests.servers import isolated_settings

LEADS = 150
BUSY_STOP_S = 10.0
IDLE_STOP_S = 2.0


def replica(settings: Settings, name: str) -> ServiceProcess:
    return ServiceProcess(
        settings.model_copy(
            update={"instance_id": f"{settings.instance_id}-{name}", "http_port": free_port()}
        )
    )


def events_beyond(count: int) -> Callable[[Outputs], bool]:
    return lambda outputs: len(outputs.values(Topic.EVENTS)) > count


def tracebacks(service: ServiceProcess) -> list[str]:
    return [line for line in service.lines if "Traceback" in line or '"exception"' in line]


async def stream(upstream: Upstream, lead_ids: list[str]) -> None:
    for lead_id in lead_ids:
        await upstream.send(Topic.INBOUND, messages.inbound(lead_id=lead_id))
        await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "accept"))
        await upstream.send(Topic.PARTNER_ACTIONS, messages.action(lead_id, "won"))
        await asyncio.sleep(0.05)


async def test_each_replica_in_turn_stops_quickly_and_nothing_is_lost(servers: Servers) -> None:
    # A hand-over takes seconds: an action must wait for its lead longer than that.
    settings = isolated_settings(servers, "rolling").model_copy(
        update={"early_action_grace": timedelta(minutes=10)}
    )
    replicas = [replica(settings, "a"), replica(settings, "b")]
    for service in replicas:
        service.start()
    stopped: list[ServiceProcess] = []
    lead_ids = [f"roll-{uuid.uuid4().hex[:6]}-{n}" for n in range(LEADS)]
    try:
        async with upstream_of(replicas[0]) as upstream:
            publishing = asyncio.create_task(stream(upstream, lead_ids))
            for n in range(len(replicas)):
                await upstream.until(events_beyond(30 * (n + 1)), what="the stream flowing")
                old = replicas[n]
                code, seconds = await asyncio.to_thread(old.terminate)
                assert (code, tracebacks(old)) == (0, [])
                assert seconds < BUSY_STOP_S, f"a busy replica took {seconds:.1f} s to stop"
                stopped.append(old)
                replicas[n] = replica(settings, f"{'ab'[n]}2")
                await asyncio.to_thread(replicas[n].start)
            await publishing
            await upstream.until(
                lambda o: all("lead.won" in o.event_types(i) for i in lead_ids), timeout=90
            )
            live = ReadApi(replicas[0].settings)
            outputs = await upstream.settled(api=live)
            await live.close()
    finally:
        for service in replicas:
            service.stop()
    events = outputs.event_ids()
    for lead_id in lead_ids:
        assert {t: len(ids) for t, ids in events[lead_id].items()} == {
            "lead.received": 1,
            "lead.accepted": 1,
            "lead.won": 1,
        }, lead_id
    assert outputs.values(Topic.REJECTED) == []


def test_an_idle_replica_stops_at_once(servers: Servers) -> None:
    service = ServiceProcess(isolated_settings(servers, "idle"))
    service.start()
    code, seconds = service.terminate()
    assert (code, tracebacks(service)) == (0, [])
    assert seconds < IDLE_STOP_S, f"an idle replica took {seconds:.1f} s to stop"
