"""The service killed at the two narrow places of a batch: committed but not yet
published, and published but its offsets not yet committed. Nothing is lost,
nothing is published twice, and what comes out has the very ids it would have had."""

import time
from collections import Counter
from pathlib import Path

import pytest

from contracts.topics import Topic
from services.dev_servers import Servers
from tests import messages
from tests.e2e.drivers import ServiceProcess, process_running, upstream_of
from tests.servers import isolated_settings


def wait_for_exit(service: ServiceProcess, timeout: float = 30.0) -> int:
    assert service.process is not None
    deadline = time.monotonic() + timeout
    while (code := service.process.poll()) is None:
        assert time.monotonic() < deadline, "the armed crash never happened"
        time.sleep(0.05)
    return code


@pytest.mark.parametrize("at", ["before_publish", "before_offset_commit"])
async def test_a_crash_right_after_the_commit_loses_and_doubles_nothing(
    servers: Servers, tmp_path: Path, at: str
) -> None:
    settings = isolated_settings(servers, "crashpoint")
    crash = tmp_path / "crash"
    service = ServiceProcess(
        settings,
        module="tests.e2e.faults",
        env={"LEADS_TEST_CRASH_FILE": str(crash), "LEADS_TEST_CRASH_AT": at},
    )
    lead = messages.inbound()
    with process_running(service):
        async with upstream_of(service) as upstream:
            crash.touch()  # armed once the partner's profile is in
            await upstream.send(Topic.INBOUND, lead)
            assert wait_for_exit(service) == -9
            service.start()
            outputs = await upstream.until(
                lambda o: (
                    "lead.received" in o.event_types(lead["lead_id"])
                    and bool(o.notifications(lead["lead_id"]))
                ),
                what="lead.received and new_lead",
            )
            # Anything published twice would show up within the relay's delay.
            time.sleep(2 * settings.relay_after.total_seconds())
    published = Counter(
        dict(r.headers)["ce_id"] for r in outputs.records if r.key == lead["lead_id"].encode()
    )
    # The event, the lead's state and the partner's alert: each once.
    assert len(published) == 3 and set(published.values()) == {1}, published
    [event] = outputs.events(lead["lead_id"])
    assert event["causation_id"] == lead["message_id"] and event["version"] == 1
    assert outputs.values(Topic.REJECTED) == []
