"""Hostile records, every kind the service must answer `malformed` and move past."""

import json
from collections.abc import Iterator

from tests import messages

MARKER = "zq-marker-7f3a"
"""In personal fields of schema-invalid messages: must never be quoted anywhere."""


def with_marker(problem: str) -> bytes:
    lead = messages.inbound()
    lead["customer"]["email"] = f"{MARKER}@fabrikam.example"
    lead["customer"]["contact_name"] = f"Grace {MARKER}"
    if problem == "email":
        lead["customer"]["email"] = f"{MARKER}-at-fabrikam"
    elif problem == "country":
        lead["customer"]["country"] = "ZZ"
    else:
        del lead["lead_type"]
    return json.dumps(lead).encode()


KINDS: dict[str, bytes] = {
    "not UTF-8": b'{"message_id": "\xff\xfe\xfa"}',
    "a BOM": b"\xef\xbb\xbf" + json.dumps(messages.inbound()).encode(),
    "NUL bytes": b'{"message_id": "m\x00", "lead_id": "\x00"}',
    "deep nesting": b"[" * 50_000 + b"]" * 50_000,
    "a 900 KB string": b'"' + b"x" * 900_000 + b'"',
    "not an object": b"[1, 2, 3]",
    "an operator object": b'{"$gt": ""}',
    "a lone surrogate": b'{"message_id": "\\ud800", "lead_id": "x"}',
    "empty": b"",
    "schema-invalid e-mail": with_marker("email"),
    "schema-invalid country": with_marker("country"),
    "a field missing": with_marker("missing"),
}
BIG = {"a 900 KB string", "deep nesting"}


def burst(size: int) -> Iterator[bytes]:
    """`size` hostile values, every kind among them (the big ones only a few times)."""
    kinds = list(KINDS)
    sent = 0
    for n in range(size * 2):
        kind = kinds[n % len(kinds)]
        if kind in BIG and n >= 2 * len(kinds):
            continue
        yield KINDS[kind]
        sent += 1
        if sent == size:
            return
