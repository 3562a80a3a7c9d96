"""The documents `leads docs` writes, as integrators' own tools see them: the
official AsyncAPI parser, ajv in strict mode, Redocly's recommended OpenAPI
rules (npm, installed by `make validators`) and Python's `jsonschema`."""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from contracts.topics import Topic
from services.lifecycle.entrypoints.cli import main
from tests import messages

VALIDATORS = Path(__file__).parents[2] / "tools" / "validators"
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contract")
    assert main(["docs", "--out", str(out)]) == 0
    return out


def validate(kind: str, *files: Path) -> str:
    if not (VALIDATORS / "node_modules").is_dir():
        pytest.fail("the npm validators are not installed: run `make validators`")
    run = subprocess.run(
        ["node", str(VALIDATORS / "validate.mjs"), kind, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(files)} file(s), 0 error(s)" in run.stdout
    return run.stdout


def test_the_asyncapi_document_is_valid_for_the_official_asyncapi_parser(documents: Path) -> None:
    validate("asyncapi", documents / "asyncapi.json")


def test_every_topic_schema_compiles_in_ajv_strict_mode(documents: Path) -> None:
    validate("schemas", *sorted(documents.glob("*.schema.json")))


def test_the_openapi_document_passes_redoclys_recommended_rules(documents: Path) -> None:
    validate("openapi", documents / "openapi.json")


def schema_of(documents: Path, topic: Topic) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((documents / f"{topic.value}.schema.json").read_text())
    return schema


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        (Topic.INBOUND, messages.inbound()),
        (Topic.PARTNER_ACTIONS, messages.action("lead-1", "accept")),
        (Topic.PARTNER_ACTIONS, messages.action("lead-1", "decline", reason="duplicate")),
        (Topic.COMMANDS, messages.command("lead-1", "remind", remaining="PT24H")),
        (Topic.PROFILES, messages.profile("partner-1")),
    ],
)
def test_jsonschema_with_format_checking_takes_valid_messages_and_refuses_broken_ones(
    documents: Path, topic: Topic, message: dict[str, Any]
) -> None:
    schema = schema_of(documents, topic)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    validator.validate(message)
    broken = {**message, "lead_id": "lead id with spaces"}
    if topic is Topic.PROFILES:
        broken = {**message, "updated_at": "yesterday"}
    with pytest.raises(ValidationError):
        validator.validate(broken)


def test_no_openapi_keyword_in_a_standalone_schema(documents: Path) -> None:
    for path in documents.glob("*.schema.json"):
        assert '"discriminator"' not in path.read_text(), path.name


def test_the_asyncapi_document_says_what_is_on_the_wire(documents: Path) -> None:
    spec = json.loads((documents / "asyncapi.json").read_text())
    for section in ("channels", "operations"):
        assert all(COMPONENT_KEY.match(key) for key in spec[section]), section
    for section in ("messages", "schemas"):
        assert all(COMPONENT_KEY.match(key) for key in spec["components"][section]), section
    assert set(spec["servers"]) == {"development", "production"}
    messages_ = spec["components"]["messages"]
    for name in ("LeadEvent", "NotificationRequested", "MessageRejected", "PerformanceUpdated"):
        headers = messages_[name]["headers"]["properties"]
        assert {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject"} <= set(
            headers
        )
        assert headers["ce_subject"]["minLength"] == 1
    assert "ce_subject" not in messages_["MessageRejected"]["headers"]["required"]
    assert (
        "partner id" in messages_["PerformanceUpdated"]["bindings"]["kafka"]["key"]["description"]
    )
    assert "lead id" in messages_["LeadEvent"]["bindings"]["kafka"]["key"]["description"]
    assert set(messages_["DeadLetter"]["headers"]["required"]) == {
        "dlq_original_topic",
        "dlq_original_partition",
        "dlq_original_offset",
        "dlq_error_class",
        "dlq_error_message",
        "dlq_id",
        "dlq_parked_at",
    }
    locations = [m.get("correlationId", {}).get("location", "") for m in messages_.values()]
    assert not any("header" in location for location in locations)
    assert spec["components"]["schemas"]["Command"]["discriminator"] == "command"
