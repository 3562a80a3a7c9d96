"""The contract documents `leads docs` writes."""

import json
from pathlib import Path

from contracts.topics import Topic
from services.lifecycle.entrypoints.cli import main


def test_leads_docs_writes_schemas_and_an_asyncapi_document(tmp_path: Path) -> None:
    assert main(["docs", "--out", str(tmp_path)]) == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert {"leads.inbound.schema.json", "leads.events.schema.json", "asyncapi.json"} <= written
    # Every topic but the dead letters (raw bytes) has a schema; and the two documents.
    schemas = {f"{topic.value}.schema.json" for topic in Topic if topic is not Topic.DEAD_LETTER}
    assert written == schemas | {"asyncapi.json", "openapi.json"}
    spec = json.loads((tmp_path / "asyncapi.json").read_text())
    payloads = {
        key: message["payload"].get("$ref")
        for key, message in spec["components"]["messages"].items()
    }
    assert payloads["InboundMessage"].endswith("/InboundMessage")
    inbound_messages = spec["components"]["schemas"]["InboundMessage"]["anyOf"]
    assert [m["$ref"].rsplit("/", 1)[1] for m in inbound_messages] == ["InboundLead", "ReopenLead"]
    assert payloads["LeadEvent"].endswith("/LeadEvent")
    assert payloads["PerformanceUpdated"].endswith("/PerformanceUpdated")
    assert spec["channels"]["leads.inbound"]["messages"] == {
        "InboundMessage": {"$ref": "#/components/messages/InboundMessage"}
    }
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    assert {"/v1/leads", "/v1/leads/counts", "/v1/leads/{lead_id}", "/v1/performance"} <= set(
        openapi["paths"]
    )
    inbound = json.loads((tmp_path / "leads.inbound.schema.json").read_text())
    kinds = {name: inbound["$defs"][name]["required"] for name in ("InboundLead", "ReopenLead")}
    assert "lead_id" in kinds["InboundLead"] and "message_type" in kinds["ReopenLead"]


def test_the_privacy_topics_are_in_the_asyncapi_document(tmp_path: Path) -> None:
    assert main(["docs", "--out", str(tmp_path)]) == 0
    spec = json.loads((tmp_path / "asyncapi.json").read_text())
    assert spec["operations"]["receive.privacy.requests"]["action"] == "receive"
    assert spec["operations"]["send.privacy.outcomes"]["action"] == "send"
    messages = spec["components"]["messages"]
    assert spec["channels"]["privacy.requests"]["messages"] == {
        "EraseCustomer": {"$ref": "#/components/messages/EraseCustomer"}
    }
    assert spec["channels"]["privacy.outcomes"]["messages"] == {
        "ErasureCompleted": {"$ref": "#/components/messages/ErasureCompleted"}
    }
    request, outcome = messages["EraseCustomer"], messages["ErasureCompleted"]
    assert request["payload"]["$ref"].endswith("/EraseCustomer")
    assert "headers" not in request  # sent by operators' tools, without CloudEvents headers
    assert "request id" in request["bindings"]["kafka"]["key"]["description"]
    assert outcome["payload"]["$ref"].endswith("/ErasureCompleted")
    headers = outcome["headers"]["properties"]
    assert headers["ce_type"]["enum"] == ["privacy.erasure_completed"]
    assert "ce_subject" in outcome["headers"]["required"]
    assert "request id" in outcome["bindings"]["kafka"]["key"]["description"]
    assert outcome["correlationId"]["location"] == "$message.payload#/request_id"
