"""A message that keeps failing for a reason no rule foresaw: parked on the
dead-letter topic after bounded retries, answered `internal_error`, the partition
moving on; then replayed by `leads dead-letters replay` once the cause is gone."""

import uuid
from datetime import timedelta
from pathlib import Path

from contracts.topics import Topic
from services.dev_servers import Servers
from tests import messages
from tests.e2e.drivers import ServiceProcess, leads_cli, process_running, upstream_of
from tests.servers import isolated_settings


async def test_a_failing_message_is_parked_answered_and_replayed_once_fixed(
    servers: Servers, tmp_path: Path
) -> None:
    settings = isolated_settings(servers, "dlq").model_copy(
        update={"retry_max_backoff": timedelta(seconds=0.2)}
    )
    poison_file = tmp_path / "poison"
    poison_file.touch()
    service = ServiceProcess(
        settings, module="tests.e2e.faults", env={"LEADS_TEST_POISON_FILE": str(poison_file)}
    )
    poison = messages.inbound(lead_id=f"poison-{uuid.uuid4().hex[:8]}")
    behind = messages.inbound()  # same key, so the same partition, right behind it
    with process_running(service):
        async with upstream_of(service) as upstream:
            headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
            await upstream.send(Topic.INBOUND, poison, headers=headers)
            await upstream.send(Topic.INBOUND, behind, key=poison["lead_id"])
            outputs = await upstream.until(
                lambda o: (
                    bool(o.rejections(poison["message_id"]))
                    and "lead.received" in o.event_types(behind["lead_id"])
                ),
                what="the poison answered and the lead behind it received",
            )
            [rejected] = outputs.rejections(poison["message_id"])
            assert (rejected["reason"], rejected["lead_id"]) == (
                "internal_error",
                poison["lead_id"],
            )
            assert "Grace" not in rejected["detail"] and "fabrikam" not in rejected["detail"]
            [parked] = [r for r in outputs.records if r.topic.endswith(Topic.DEAD_LETTER.value)]
            assert parked.value == upstream.sent_value(poison)
            names = dict(parked.headers)
            assert names["traceparent"] == headers[0][1]
            assert (
                names["dlq_original_topic"] == Topic.INBOUND.named(settings.topic_prefix).encode()
            )
            assert names["dlq_error_class"] == b"RuntimeError"
            assert {"dlq_id", "dlq_original_partition", "dlq_original_offset"} <= set(names)
            errors = [line for line in service.lines if '"level": "ERROR"' in line]
            assert len(errors) == 1 and "parked" in errors[0]
            assert all("Grace" not in line and "fabrikam" not in line for line in service.lines)

            listed = leads_cli(settings, "dead-letters", "list")
            assert listed.returncode == 0
            assert names["dlq_id"].decode() in listed.stdout and "not replayed" in listed.stdout
            assert "fabrikam" not in listed.stdout

            poison_file.unlink()  # the cause is fixed
            replayed = leads_cli(settings, "dead-letters", "replay")
            assert replayed.returncode == 0, replayed.stderr
            await upstream.until(
                lambda o: "lead.received" in o.event_types(poison["lead_id"]),
                what="the replayed lead received",
            )
            assert "replayed" in leads_cli(settings, "dead-letters", "list").stdout
            again = leads_cli(settings, "dead-letters", "replay")
            assert again.returncode == 0 and "replayed" not in again.stdout
