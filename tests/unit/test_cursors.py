"""Inbox cursors are opaque and tamper-evident: signed for the partner they were
handed to, refused before any query otherwise, every value range-checked."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import Stage, Tab
from contracts.performance import PartnerPerformance
from services.lifecycle.domain.clock import FixedClock
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.inbox import (
    BadCursor,
    Cursor,
    CursorSeal,
    Inbox,
    InboxFilter,
    Page,
    Position,
)

KEY = b"k" * 32
WHERE = Cursor(datetime(2026, 3, 1, 12, 30, tzinfo=UTC), "lead-42")


def forged(position: object, key: bytes = KEY, partner: str = "partner-1") -> str:
    """A cursor signed with `key` over any position: what only a holder of the key can make."""
    text = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    mac = hmac.digest(key, f"{partner}\x1f{text}".encode(), hashlib.sha256)
    return f"{text}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def test_a_cursor_comes_back_to_the_partner_it_was_handed_to() -> None:
    seal = CursorSeal(KEY)
    assert seal.open(seal.seal(WHERE, "partner-1"), "partner-1") == WHERE
    assert forged([WHERE.received_at.isoformat(), WHERE.lead_id]) == seal.seal(WHERE, "partner-1")


@pytest.mark.parametrize(
    "cursor",
    [
        CursorSeal(KEY).seal(WHERE, "partner-2"),  # another partner's
        CursorSeal(b"x" * 32).seal(WHERE, "partner-1"),  # another key's (another replica)
        CursorSeal(KEY).seal(WHERE, "partner-1")[:-2] + "AA",  # signature altered
        forged(["2026-03-01T12:30:00+00:00", "lead-43"])[:20] + "x",  # position altered
        base64.urlsafe_b64encode(b'["2026-03-01T12:30:00+00:00","lead-42"]').decode(),  # unsigned
        "not-a-cursor",
        "",
        ".",
        "a.b.c",
    ],
)
def test_a_cursor_not_handed_out_to_this_partner_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        CursorSeal(KEY).open(cursor, "partner-1")


@pytest.mark.parametrize(
    "position",
    [
        ["9999-12-31T23:59:59-23:59", "lead-1"],  # past datetime.max in UTC
        ["0001-01-01T00:00:00+23:59", "lead-1"],  # before datetime.min in UTC
        ["2026-03-01T12:30:00", "lead-1"],  # no offset
        ["2026-13-01T00:00:00+00:00", "lead-1"],
        [1e308, "lead-1"],
        ["2026-03-01T12:30:00+00:00", "lead-1\n"],
        ["2026-03-01T12:30:00+00:00", "l" * 65],
        ["2026-03-01T12:30:00+00:00", 42],
        ["2026-03-01T12:30:00+00:00"],
        {"received_at": "2026-03-01T12:30:00+00:00"},
    ],
)
def test_every_value_of_even_a_validly_signed_cursor_is_range_checked(position: object) -> None:
    with pytest.raises(BadCursor):
        CursorSeal(KEY).open(forged(position), "partner-1")


class Reader:
    """Records the queries it is asked; it has one lead past the first page."""

    def __init__(self) -> None:
        self.pages: list[Position | None] = []

    async def page(
        self, partner_id: str, where: InboxFilter, after: Position | None, limit: int
    ) -> Page:
        self.pages.append(after)
        return Page([], WHERE if after is None else None)

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        raise AssertionError("not asked")

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None:
        raise AssertionError("not asked")

    async def performance(self, partner_id: str) -> PartnerPerformance | None:
        raise AssertionError("not asked")


async def test_the_inbox_hands_out_sealed_cursors_and_refuses_others_before_any_query() -> None:
    reader = Reader()
    inbox = Inbox(reader, FixedClock(datetime(2026, 3, 2, tzinfo=UTC)), CursorSeal(KEY))
    first = await inbox.page("partner-1", InboxFilter(), timedelta(days=1), None, 10)
    assert first.next_cursor is not None
    second = await inbox.page("partner-1", InboxFilter(), None, first.next_cursor, 10)
    assert second.next_cursor is None and reader.pages == [None, WHERE]

    with pytest.raises(BadCursor):
        await inbox.page("partner-2", InboxFilter(), None, first.next_cursor, 10)
    assert reader.pages == [None, WHERE]  # nothing queried for the refused cursor


def test_without_a_key_each_process_draws_its_own() -> None:
    one, other = CursorSeal(), CursorSeal()
    with pytest.raises(BadCursor):
        other.open(one.seal(WHERE, "partner-1"), "partner-1")
