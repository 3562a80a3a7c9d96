"""Property-based: whatever bytes come in on an input topic, the outcome is a message
decided by the rules or a refusal, never another error; and a refusal never quotes
the customer's personal data back."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import TypeAdapter

from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.lifecycle.adapters.memory import InMemoryStore
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.entrypoints.docs import INPUT_MODELS
from services.lifecycle.service_layer.batch import BatchPlan
from services.lifecycle.service_layer.decoding import Malformed, decode
from services.lifecycle.service_layer.erasure import ErasureService
from services.lifecycle.service_layer.messages import Delivery
from services.lifecycle.service_layer.ports import Snapshot
from tests import messages
from tests.unit.test_lifecycle_rules import receive

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PROFILE = PartnerProfile.model_validate(messages.profile())
SCHEMAS = {topic: TypeAdapter(model).json_schema() for topic, model in INPUT_MODELS.items()}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

topics = st.sampled_from(list(INPUT_MODELS))
hostile_values = st.one_of(
    st.binary(max_size=512),
    st.just(b"\xef\xbb\xbf" + json.dumps(messages.inbound()).encode()),  # a BOM
    st.just(b'{"message_id": "m-1\x00"}'),  # a NUL byte
    st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(b'"' + b"x" * 900_000 + b'"'),  # a 900 KB string
    st.just(b'{"$gt": ""}'),
    st.just(b'{"message_id": "\\ud800"}'),  # a lone surrogate
    st.sampled_from([b"[]", b"1", b"null", b'"text"', b"{}", b""]),
)


def mutated(document: Any) -> st.SearchStrategy[Any]:
    """The document with one part dropped, replaced or wrapped, or as it is."""
    if not isinstance(document, dict) or not document:
        return st.just(document)
    keys = sorted(document)
    junk = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers()))
    return st.one_of(
        st.just(document),
        st.sampled_from(keys).map(lambda k: {n: v for n, v in document.items() if n != k}),
        st.tuples(st.sampled_from(keys), junk).map(lambda kv: {**document, kv[0]: kv[1]}),
        st.sampled_from(keys).flatmap(
            lambda k: mutated(document[k]).map(lambda inner: {**document, k: inner})
        ),
        st.just([document]),
    )


def decide(topic: Topic, raw: bytes) -> str:
    """Decode and decide one record as the service does; returns the outcome."""
    delivery = Delivery(topic, topic.value, 0, 7, raw)
    if topic is Topic.PRIVACY_REQUESTS:
        store = InMemoryStore(SystemClock(), subject_keys=SubjectKeys(b"fuzz"))
        erasures = ErasureService(store, SystemClock(), SubjectKeys(b"fuzz"))
        return asyncio.run(erasures.decide_and_commit([delivery])).outcomes[0].outcome
    try:
        message: Any = decode(topic, raw)
    except Malformed as refusal:
        message = refusal
    lead = receive(NOW, lead_id="lead-fuzz")
    snapshot = Snapshot(frozenset(), {lead.lead_id: lead}, {PROFILE.partner_id: PROFILE}, {})
    plan = BatchPlan(snapshot, NOW, Windows(), early_action_grace=Windows().response)
    return plan.take(delivery, message).outcome


@FUZZ
@given(topics, hostile_values)
def test_any_bytes_get_an_answer_never_an_error(topic: Topic, raw: bytes) -> None:
    assert decide(topic, raw) in {"rejected", "applied", "no_change", "held"}


@FUZZ
@given(topics.flatmap(lambda t: st.tuples(st.just(t), from_schema(SCHEMAS[t]).flatmap(mutated))))
def test_contract_shaped_messages_bent_out_of_shape_get_an_answer(drawn: tuple[Topic, Any]) -> None:
    topic, document = drawn
    raw = json.dumps(document).encode()
    assert decide(topic, raw) in {"rejected", "applied", "no_change", "held"}


# Led by a letter no text of ours holds, so that finding it in a refusal means it was
# quoted (a plain "custom" is also part of the field path "customer.email").
personal = st.text(st.characters(categories=["L", "N"]), min_size=5, max_size=30).map(
    lambda text: f"Ø{text}"
)


@FUZZ
@given(personal, personal, from_schema(SCHEMAS[Topic.INBOUND]).flatmap(mutated))
def test_a_refusal_never_quotes_the_customers_personal_data(
    name: str, mailbox: str, document: Any
) -> None:
    if isinstance(document, dict):
        customer = document.get("customer")
        document["customer"] = {
            **(customer if isinstance(customer, dict) else {}),
            "contact_name": name,
            "email": f"{mailbox}@{mailbox}",  # not a valid address: refused
        }
    try:
        decode(Topic.INBOUND, json.dumps(document).encode())
    except Malformed as refusal:
        assert name not in refusal.detail and mailbox not in refusal.detail
