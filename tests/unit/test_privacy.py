"""A customer's erasure, as rules: who they are (keyed hashes), what of a lead is
theirs, how any stored copy is redacted, and when a new lead of theirs is taken."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.inbound import Consent, InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import EventType, Reason
from services.lifecycle.adapters.erasures import redacted_value
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.privacy import (
    ERASED,
    Subject,
    SubjectKeys,
    erase,
    refuse_unless_consented,
)
from tests import messages

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
KEYS = SubjectKeys(b"test-key")


def stored_lead(**customer: str) -> rules.Lead:
    message = InboundLead.model_validate(
        messages.inbound(customer={**messages.inbound()["customer"], **customer})
    )
    return rules.receive(
        None, message, NOW, rules.Windows(), PartnerProfile.model_validate(messages.profile())
    ).lead


def test_a_customer_is_the_same_whatever_the_case_of_the_email_or_the_phones_form() -> None:
    assert KEYS.of("Grace@Fabrikam.example", None) == KEYS.of("grace@fabrikam.EXAMPLE", None)
    assert KEYS.of(None, "+49 30 123456") == KEYS.of(None, "+4930123456")
    assert KEYS.of(None, "030 123456", "DE") == KEYS.of(None, "+49 30 123456")
    assert KEYS.of("grace@fabrikam.example", None) != KEYS.of("ada@fabrikam.example", None)


def test_the_keys_depend_on_the_secret() -> None:
    ours = KEYS.of("grace@fabrikam.example", None)
    assert ours != SubjectKeys(b"other").of("grace@fabrikam.example", None)


def test_the_keys_in_a_message_are_those_of_every_email_and_phone_in_it() -> None:
    document = {"customer": {"email": "Grace@F.example", "phone": "030 1234567", "country": "DE"}}
    assert KEYS.in_document([document]) == KEYS.of("grace@f.example", "+49 30 1234567")


def test_erasing_a_lead_keeps_the_company_and_redacts_the_customer_from_free_text() -> None:
    lead = stored_lead(email="grace@fabrikam.example", contact_name="Grace Hopper")
    lead = lead.model_copy(update={"need": "Call Grace Hopper at grace@fabrikam.example."})
    subject = Subject.of(KEYS.of("GRACE@fabrikam.example", None), ["GRACE@fabrikam.example"])

    decision = erase(lead, subject.with_texts_of([lead]), "req-1", NOW)

    erased = decision.lead
    assert decision.event is EventType.CUSTOMER_ERASED and decision.request_id == "req-1"
    assert (erased.customer.email, erased.customer.phone, erased.customer.contact_name) == (
        None,
        None,
        None,
    )
    assert erased.customer.company_name == lead.customer.company_name
    assert erased.need == f"Call {ERASED} at {ERASED}."
    assert erased.version == lead.version + 1 and erased.match_keys == ()
    assert KEYS.of_lead(erased) == frozenset()
    assert erase(erased, subject, "req-1", NOW).event is None  # nothing left: a no-op


def test_redaction_nulls_contact_fields_and_replaces_whole_words_only() -> None:
    subject = Subject.of(frozenset(), ["ann@x.example", "Ann"])
    document = {
        "recipient": {"email": "ANN@x.example"},
        "customer": {"contact_name": "Ann"},
        "notes": "Annual review with Ann (ann@x.example)",
    }
    assert subject.redacted(document) == {
        "recipient": {"email": None},
        "customer": {"contact_name": None},
        "notes": f"Annual review with {ERASED} ({ERASED})",
    }
    assert subject.redacted_bytes(b"\xff to ANN@x.example") == b"\xff to " + ERASED.encode()


def test_a_new_lead_of_an_erased_customer_needs_consent_given_after_the_erasure() -> None:
    erased_at, now = NOW, NOW + timedelta(days=1)
    for consent in (
        None,
        Consent(contact=True),
        Consent(contact=True, given_at=NOW - timedelta(seconds=1)),
        Consent(contact=False, given_at=NOW + timedelta(hours=1)),
        Consent(contact=True, given_at=now + timedelta(days=1)),  # not given yet
    ):
        with pytest.raises(Refused) as refused:
            refuse_unless_consented(erased_at, consent, now)
        assert refused.value.reason is Reason.ERASED_SUBJECT
    consented = Consent(contact=True, given_at=NOW + timedelta(hours=1))
    refuse_unless_consented(erased_at, consented, now)


def test_a_name_that_is_a_common_word_changes_no_id_or_type() -> None:
    subject = Subject.of(frozenset(), ["won@x.example", "Won"])
    event = {
        "type": "lead.won",
        "lead_id": "lead-won-1",
        "lead": {"customer": {"contact_name": "Won", "email": "won@x.example"}},
        "notes": "Won met us",
        "data": {"contact_name": "Won"},
    }
    assert subject.redacted(event) == {
        "type": "lead.won",
        "lead_id": "lead-won-1",
        "lead": {"customer": {"contact_name": None, "email": None}},
        "notes": f"{ERASED} met us",
        "data": {"contact_name": None},
    }


def test_consent_without_given_at_leaves_a_leads_fingerprint_as_stored_before_it() -> None:
    lead = InboundLead.model_validate(messages.inbound(consent={"contact": True}))
    # As computed before consent had `given_at`: a lead sent again is the same lead.
    content = lead.model_dump(mode="json", exclude={"message_id", "source_lead_id", "routing"})
    del content["consent"]["given_at"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert rules.fingerprint(lead) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_contact_in_a_list_that_is_the_customer_goes_whole() -> None:
    subject = Subject.of(frozenset(), ["ann@x.example"])
    action = {
        "contacts": [
            {"name": "Ann", "email": "Ann@X.example"},
            {"name": "Bo", "email": "bo@y.example"},
        ]
    }
    assert subject.redacted(action) == {"contacts": [{"name": "Bo", "email": "bo@y.example"}]}


def test_any_stored_bytes_are_redacted_without_failing() -> None:
    subject = Subject.of(frozenset(), ["ann@x.example"])
    lone_surrogate = b'{"notes": "ann@x.example \\ud800"}'
    deep = b"[" * 5000 + b'"ann@x.example"' + b"]" * 5000
    assert b"ann@x" not in redacted_value(subject, lone_surrogate)
    assert b"ann@x" not in redacted_value(subject, deep)
    assert redacted_value(subject, b"\xff\xfe not json") == b"\xff\xfe not json"
