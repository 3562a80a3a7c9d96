"""Cursors of the idle-longest list: sealed like the newest-first list's, naming
their order, and refused when they name one the service does not list by."""

from datetime import UTC, datetime

import pytest

from services.lifecycle.service_layer.inbox import BadCursor, Cursor, CursorSeal, IdleCursor
from tests.unit.test_cursors import KEY, forged

IDLE = IdleCursor(datetime(2026, 3, 1, 12, 30, tzinfo=UTC), "lead-42")


def test_an_idle_cursor_comes_back_as_one_and_names_its_order() -> None:
    seal = CursorSeal(KEY)
    assert seal.open(seal.seal(IDLE, "partner-1"), "partner-1") == IDLE
    named = forged([IDLE.idle_since.isoformat(), IDLE.lead_id, "idle"])
    assert named == seal.seal(IDLE, "partner-1")
    # The same position without the order's name is the newest-first list's.
    unnamed = forged([IDLE.idle_since.isoformat(), IDLE.lead_id])
    assert seal.open(unnamed, "partner-1") == Cursor(IDLE.idle_since, IDLE.lead_id)


@pytest.mark.parametrize(
    "position",
    [
        ["2026-03-01T12:30:00+00:00", "lead-1", "oldest"],
        ["2026-03-01T12:30:00+00:00", "lead-1", "newest"],
        ["2026-03-01T12:30:00+00:00", "lead-1", "idle", "extra"],
        ["2026-03-01T12:30:00", "lead-1", "idle"],  # no offset
        ["2026-03-01T12:30:00+00:00", "lead 1", "idle"],
        [None, "lead-1", "idle"],
    ],
)
def test_every_value_of_a_validly_signed_idle_cursor_is_checked(position: object) -> None:
    with pytest.raises(BadCursor):
        CursorSeal(KEY).open(forged(position), "partner-1")
