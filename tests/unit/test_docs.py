"""The contract documents `leads docs` writes."""

import json
from pathlib import Path

from services.lifecycle.entrypoints.cli import main


def test_leads_docs_writes_schemas_and_an_asyncapi_document(tmp_path: Path) -> None:
    assert main(["docs", "--out", str(tmp_path)]) == 0
    written = {p.name for p in tmp_path.iterdir()}
    assert {"leads.inbound.schema.json", "leads.events.schema.json", "asyncapi.json"} <= written
    assert len(written) == 11  # nine topics with a schema, the AsyncAPI and the OpenAPI documents
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
