"""A customer's right to erasure: who the customer is (keyed hashes of their e-mail
and phone, as duplicates are matched), what of a lead is theirs, and how any stored
copy is redacted.

Pure: the key is given, nothing is read or written here.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.inbound import Consent
from contracts.topics import EventType, Reason
from services.lifecycle.domain import matching
from services.lifecycle.domain.errors import Refused
from services.lifecycle.domain.lead import SYSTEM, Decision, Lead, Step

ERASED = "[erased]"
"""What stands in free text where the customer's e-mail, phone or name was."""
_CONTACT_FIELDS = frozenset({"email", "phone", "contact_name"})
_FREE_TEXT_FIELDS = frozenset({"need", "notes", "summary", "closing_notes", "name", "data"})
"""Where a customer's name may be written; their e-mail and phone are looked for in any
text, but a name (a common word, perhaps) is not, so that no id or type is changed."""
# Bounded: a long run of word characters without an "@" costs linear time, not quadratic.
_EMAILS = re.compile(r"[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_MIN_TERM = 3
"""Shorter texts are not searched for in free text: they would match anything."""


class SubjectKeys:
    """A customer's keys: their normalised e-mail and E.164 phone, each hashed with
    a secret (`LEADS_ERASURE_KEY`). Stored on what holds their data and on the
    proof of an erasure; without the secret, they say nothing of the customer."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret[:64]  # blake2b's longest key

    def of(self, email: str | None, phone: str | None, country: str = "ZZ") -> frozenset[str]:
        """`country` reads a national phone number; "ZZ" takes only international ones."""
        values = (
            ("email", matching.normalised_email(email) if email else None),
            ("phone", matching.e164(phone, country)),
        )
        return frozenset(self._hashed(kind, value) for kind, value in values if value)

    def of_lead(self, lead: Lead) -> frozenset[str]:
        """The keys of the customer whose data the lead holds, or held before a decline
        or an expiry erased it (none once the customer is erased)."""
        customer = lead.customer
        return self.of(customer.email, customer.phone, customer.country).union(lead.subject_keys)

    def in_document(self, value: Any) -> frozenset[str]:
        """Every e-mail and phone in a JSON document (a message as it came): each
        object's `email` and `phone` (a phone read as its object's `country`'s), and
        any e-mail address written in its text."""
        keys: set[str] = set()
        for text in _texts(value):
            keys |= {
                self._hashed("email", matching.normalised_email(e)) for e in _EMAILS.findall(text)
            }
        for found in _objects(value):
            email, phone = found.get("email"), found.get("phone")
            country = found.get("country")
            keys |= self.of(
                email if isinstance(email, str) else None,
                phone if isinstance(phone, str) else None,
                country if isinstance(country, str) and len(country) == 2 else "ZZ",
            )
        return frozenset(keys)

    def _hashed(self, kind: str, value: str) -> str:
        text = f"{kind}\x1f{value}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, key=self._secret, digest_size=16).hexdigest()


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    for found in _objects(value):
        yield from (v for v in found.values() if isinstance(v, str))
        for item in found.values():
            if isinstance(item, list):
                yield from (v for v in item if isinstance(v, str))


def _objects(value: Any) -> Iterable[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@dataclass(frozen=True)
class Subject:
    """The customer to forget: their keys, and the texts that are theirs (e-mails,
    phones and names as they were written), to redact wherever they are copied."""

    keys: frozenset[str]
    terms: frozenset[str]

    @classmethod
    def of(cls, keys: frozenset[str], texts: Iterable[str | None]) -> "Subject":
        return cls(keys, frozenset(t.strip() for t in texts if t and len(t.strip()) >= _MIN_TERM))

    def with_texts_of(self, leads: Iterable[Lead]) -> "Subject":
        """With what the leads hold of the customer to redact in copies: their e-mail,
        phone as each lead wrote it, and name."""
        texts = set(self.terms)
        for lead in leads:
            c = lead.customer
            texts |= {t for t in (c.email, c.phone, c.contact_name) if t}
        return Subject.of(self.keys, texts)

    def redacted(self, value: Any) -> Any:
        """A JSON document without the customer: a contact field holding one of their
        texts is null; free text has them replaced by `[erased]`, any other text their
        e-mail and phone."""
        every, distinctive = self._pattern(), self._pattern(distinctive_only=True)
        if every is None:
            return value
        return _redacted(value, _Patterns(every, distinctive), None)

    def redacted_text(self, text: str) -> str:
        pattern = self._pattern()
        return text if pattern is None else pattern.sub(ERASED, text)

    def redacted_bytes(self, raw: bytes) -> bytes:
        """Bytes that are not JSON: each text replaced where it stands."""
        pattern = self._pattern()
        if pattern is None:
            return raw
        binary = re.compile(pattern.pattern.encode("utf-8", "surrogatepass"), re.IGNORECASE)
        return binary.sub(ERASED.encode(), raw)

    def _pattern(self, distinctive_only: bool = False) -> re.Pattern[str] | None:
        terms = [t for t in self.terms if not distinctive_only or _distinctive(t)]
        if not terms:
            return None
        longest_first = sorted(terms, key=len, reverse=True)
        # Whole words only: a name must not take a bite out of a longer word.
        either = "|".join(re.escape(t) for t in longest_first)
        return re.compile(rf"(?<!\w)(?:{either})(?!\w)", re.IGNORECASE)


def _distinctive(term: str) -> bool:
    """An e-mail or a phone: found in any text, it is theirs."""
    return "@" in term or any(c.isdigit() for c in term)


@dataclass(frozen=True)
class _Patterns:
    every: re.Pattern[str]
    distinctive: re.Pattern[str] | None


def _redacted(value: Any, patterns: _Patterns, field: str | None) -> Any:
    if isinstance(value, dict):
        # Within free text (a notification's `data` too), every part is free text.
        inner = field if field in _FREE_TEXT_FIELDS else None
        return {
            k: _redacted(v, patterns, k if k in _CONTACT_FIELDS else inner or k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        # A contact in a list that is the customer goes whole: a contact without its
        # e-mail would no longer be one (an action held with it could not be applied).
        kept = [v for v in value if not _is_theirs(v, patterns.every)]
        return [_redacted(v, patterns, field) for v in kept]
    if not isinstance(value, str):
        return value
    text = field in _FREE_TEXT_FIELDS or field in _CONTACT_FIELDS
    pattern = patterns.every if text else patterns.distinctive
    if pattern is None or not pattern.search(value):
        return value
    return None if field in _CONTACT_FIELDS else pattern.sub(ERASED, value)


def _is_theirs(value: Any, pattern: re.Pattern[str]) -> bool:
    email = value.get("email") if isinstance(value, dict) else None
    return isinstance(email, str) and pattern.fullmatch(email) is not None


def erase(lead: Lead, subject: Subject, request_id: str, now: datetime) -> Decision:
    """The customer's data gone from the lead, as on a decline (company, country and
    size stay), and from its free text; its match keys with it. Nothing of theirs
    left: a no-op."""
    erased = lead.model_copy(
        update={
            "customer": lead.customer.model_copy(
                update={"contact_name": None, "email": None, "phone": None}
            ),
            "need": subject.redacted_text(lead.need),
            "closing_notes": _redacted_or_none(lead.closing_notes, subject),
            "deal": lead.deal.model_copy(
                update={
                    "name": subject.redacted_text(lead.deal.name),
                    "notes": _redacted_or_none(lead.deal.notes, subject),
                }
            )
            if lead.deal
            else None,
            "activities": tuple(
                a.model_copy(update={"summary": subject.redacted_text(a.summary)})
                for a in lead.activities
            ),
            "match_keys": (),
            "subject_keys": (),
        }
    )
    if erased == lead:
        return Decision(lead)
    changed = Step(now, SYSTEM, "erase_customer").record(erased)
    return Decision(changed, EventType.CUSTOMER_ERASED, request_id=request_id)


def _redacted_or_none(text: str | None, subject: Subject) -> str | None:
    return subject.redacted_text(text) if text else text


def refuse_unless_consented(erased_at: datetime, consent: Consent | None, now: datetime) -> None:
    """A new lead of a customer whose data was erased is refused, unless it carries
    their consent to be contacted, given after the erasure (and not later than now)."""
    given_at = consent.given_at if consent and consent.contact else None
    if given_at is not None and erased_at < given_at <= now:
        return
    raise Refused(
        Reason.ERASED_SUBJECT,
        "the customer's data was erased at their request: only a new lead with "
        "consent.contact true and consent.given_at after the erasure brings it back",
    )
