"""Transient-failure retry policy, and the contract documents `leads docs` writes."""

import json
from pathlib import Path

import pytest

from services.lifecycle.entrypoints.app import Retry
from services.lifecycle.entrypoints.cli import main
from services.lifecycle.service_layer.handler import Handled


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> Handled:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database unavailable")
        return Handled("applied")


async def test_transient_failures_are_retried_with_growing_backoff() -> None:
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    work = Flaky(failures=4)
    result = await Retry(first_delay=0.1, max_delay=0.5, attempts=10, sleep=record).run(work)
    assert result.outcome == "applied" and work.calls == 5
    assert waits == [0.1, 0.2, 0.4, 0.5]


async def test_a_failure_that_outlasts_the_retries_is_raised_so_kafka_redelivers() -> None:
    async def no_wait(delay: float) -> None:
        return None

    work = Flaky(failures=100)
    with pytest.raises(ConnectionError):
        await Retry(attempts=3, sleep=no_wait).run(work)
    assert work.calls == 3


def test_leads_docs_writes_schemas_and_an_asyncapi_document(tmp_path: Path) -> None:
    assert main(["docs", "--out", str(tmp_path)]) == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert {"leads.inbound.schema.json", "leads.events.schema.json", "asyncapi.json"} <= written
    assert len(written) == 10  # eight topics, the AsyncAPI and the OpenAPI documents
    spec = json.loads((tmp_path / "asyncapi.json").read_text())
    payloads = {
        key: message["payload"].get("$ref")
        for key, message in spec["components"]["messages"].items()
    }
    assert payloads["InboundLead"].endswith("/InboundLead")
    assert payloads["LeadEvent"].endswith("/LeadEvent")
    assert payloads["PerformanceUpdated"].endswith("/PerformanceUpdated")
    assert spec["channels"]["leads.inbound"]["messages"] == {
        "InboundLead": {"$ref": "#/components/messages/InboundLead"}
    }
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    assert {"/v1/leads", "/v1/leads/counts", "/v1/leads/{lead_id}", "/v1/performance"} <= set(
        openapi["paths"]
    )
    inbound = json.loads((tmp_path / "leads.inbound.schema.json").read_text())
    assert "lead_id" in inbound["required"]
