"""What integrators' own tools see of a running service: schemathesis fuzzes every
operation of the read API against its OpenAPI document, and the official
CloudEvents SDK reads every record the service and the scheduler publish."""

import asyncio
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from contracts.topics import OUTBOUND_TOPICS, Topic
from tests import messages
from tests.e2e.drivers import ServiceProcess, scheduler_running, upstream_of
from tests.e2e.test_inbox_over_http import received

# schemathesis's own strategies draw from `random`: its warning is not about this service.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 25


def fuzz(base_url: str, token: str, known_lead: str) -> list[str]:
    """Every operation, with generated valid and invalid parameters, and a valid token."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    covered = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is not usable
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.path_parameters or operation.query:
            modes.append(GenerationMode.NEGATIVE)
        strategy = hypothesis.strategies.one_of(*(operation.as_strategy(m) for m in modes))

        @hypothesis.given(case=strategy)
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        answers_as_documented()
        covered.append(operation.label)
    lead = schema["/v1/leads/{lead_id}"]["GET"]
    answer = lead.Case(path_parameters={"lead_id": known_lead}).call_and_validate(
        base_url=base_url, headers=headers, checks=CHECKS
    )
    assert answer.status_code == 200
    return covered


def assert_no_traceback(service: ServiceProcess) -> None:
    logged = "\n".join(service.lines)
    assert "Traceback" not in logged and '"exception"' not in logged


async def test_every_operation_answers_as_its_openapi_document_says(
    running_service: ServiceProcess,
) -> None:
    async with upstream_of(running_service) as upstream:
        lead_id = await received(upstream, messages.PARTNER)
        await received(upstream, messages.PARTNER, contact_requested=True)
        base_url = f"http://127.0.0.1:{running_service.settings.http_port}"
        covered = await asyncio.to_thread(fuzz, base_url, upstream.api.token(), lead_id)
    assert {
        "GET /v1/leads",
        "GET /v1/leads/counts",
        "GET /v1/leads/{lead_id}",
        "POST /v1/leads/{lead_id}/actions",
        "GET /v1/actions/{message_id}",
        "GET /v1/performance",
        "GET /v1/profile",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /asyncapi.json",
        "GET /asyncapi",
        "GET /",
    } == set(covered)
    assert_no_traceback(running_service)


def as_cloudevent(record: Any) -> Any:
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    return from_binary_event(message)


async def test_every_published_record_is_read_by_the_cloudevents_sdk(
    running_service: ServiceProcess,
) -> None:
    # Sweeps often: the held action is refused by the first sweep after its grace ends.
    settings = running_service.settings.model_copy(
        update={
            "performance_interval": timedelta(seconds=1),
            "sweep_interval": timedelta(seconds=0.5),
        }
    )
    async with upstream_of(running_service) as upstream:
        overdue = await received(upstream, messages.PARTNER, received_at=messages.overdue())
        mine = {await received(upstream, messages.PARTNER), overdue}
        unknown = messages.action(messages.new_id("lead"), "favorite")
        await upstream.send(Topic.PARTNER_ACTIONS, unknown)
        await upstream.send(Topic.INBOUND, b"\xff\xfe not JSON at all", key="")
        with scheduler_running(settings):
            for what, condition in {
                "an unreadable message refused": lambda o: any(
                    r.get("message_id") is None for r in o.values(Topic.REJECTED)
                ),
                "an action on an unknown lead refused": lambda o: bool(
                    o.rejections(unknown["message_id"])
                ),
                "the overdue lead expired": lambda o: "lead.expired" in o.event_types(overdue),
                "the partner's figures": lambda o: any(
                    p["partner_id"] == messages.PARTNER for p in o.values(Topic.PERFORMANCE)
                ),
            }.items():
                await upstream.until(condition, what=what)
        published = [
            r
            for r in upstream.outputs.records
            if any(r.topic.endswith(t.value) for t in OUTBOUND_TOPICS)
            or (r.topic.endswith(Topic.COMMANDS.value) and (r.key or b"").decode() in mine)
        ]

    seen: dict[str, int] = {}
    for record in published:
        event = as_cloudevent(record)  # raises on anything the SDK refuses
        headers = dict(record.headers)
        assert event.get_id() == headers["ce_id"].decode()
        assert event.get_type() == headers["ce_type"].decode()
        assert event.get_subject() != ""
        topic = record.topic.removeprefix(settings.topic_prefix)
        seen[topic] = seen.get(topic, 0) + 1
    assert set(seen) >= {
        Topic.EVENTS.value,
        Topic.NOTIFICATIONS.value,
        Topic.REJECTED.value,
        Topic.PERFORMANCE.value,
        Topic.COMMANDS.value,
    }
    unreadable = next(r for r in published if r.topic.endswith("rejected") and not r.key)
    assert as_cloudevent(unreadable).get_subject() is None  # left out, not sent empty
