"""Actions taken over HTTP, before anything is published: the headers that become
the message_id and expected_version, and the body checked as a contract action."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.actions import Accept, Favorite
from contracts.topics import Reason
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.service_layer.actions import (
    ActionMarker,
    Actions,
    BadRequest,
    Caller,
    InvalidAction,
    Submission,
    expected_version,
    message_id,
    to_action,
)
from services.lifecycle.service_layer.messages import Outcome
from tests import messages

CALLER = Caller("partner-1", "ada", "referrals_admin")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def action(body: object, version: int | None = None) -> object:
    return to_action(json.dumps(body).encode(), "lead-1", CALLER, "partner-1:k1", version, NOW)


def problems(body: object) -> dict[str, str]:
    with pytest.raises(InvalidAction) as refused:
        action(body)
    return dict(refused.value.problems)


def test_the_idempotency_key_is_scoped_to_the_partner() -> None:
    assert message_id("partner-1", "0f8e2c1a-77aa") == "partner-1:0f8e2c1a-77aa"
    # No colon: partner `acme` with key `eu:1` would be partner `acme:eu` with key `1`.
    for bad in (None, "", "with space", "é", "x" * 64, "eu:1"):
        with pytest.raises(BadRequest, match="Idempotency-Key"):
            message_id("partner-1", bad)


@pytest.mark.parametrize(
    ("if_match", "version"), [(None, None), ("*", None), ('"7"', 7), (' "12" ', 12)]
)
def test_if_match_is_the_version_read(if_match: str | None, version: int | None) -> None:
    assert expected_version(if_match) == version


@pytest.mark.parametrize("if_match", ['W/"7"', "7", '"0"', '"7", "8"', '"-1"', '"x"'])
def test_an_if_match_that_names_no_one_version_is_refused(if_match: str) -> None:
    with pytest.raises(BadRequest, match="If-Match"):
        expected_version(if_match)


def test_identity_comes_from_the_token_path_and_headers() -> None:
    made = action({"action": "accept", "deal": messages.DEAL}, version=3)
    assert isinstance(made, Accept)
    assert (made.message_id, made.lead_id, made.partner_id) == (
        "partner-1:k1",
        "lead-1",
        "partner-1",
    )
    assert (made.actor.user_id, made.actor.role) == ("ada", "referrals_admin")
    assert (made.occurred_at, made.expected_version) == (NOW, 3)
    assert isinstance(action({"action": "favorite"}), Favorite)


def test_a_body_naming_identity_fields_is_refused() -> None:
    found = problems({"action": "favorite", "partner_id": "partner-2", "message_id": "m"})
    assert set(found) == {"partner_id", "message_id"}


def test_wrong_fields_are_named_without_their_values() -> None:
    secret = "Ada Lovelace, secret street"
    deal: dict[str, Any] = dict(messages.DEAL)
    deal["estimated_close_date"] = 20270101  # a number where the contract says a date
    found = problems(
        {"action": "accept", "deal": deal, "contacts": [{"name": "Ada", "email": secret}]}
    )
    assert set(found) == {"deal.estimated_close_date", "contacts.0.email"}
    assert secret not in json.dumps(found)
    assert problems({"action": secret}) == {
        "action": "must be one of accept, decline, undo_decline, update, add_contacts, "
        "log_activity, snooze, won, lost, favorite, unfavorite"
    }
    # email-validator's own message quotes part of the address.
    found = problems(
        {"action": "add_contacts", "contacts": [{"name": "A", "email": "a@·wayne.example"}]}
    )
    assert found == {"contacts.0.email": "value is not a valid email address"}
    deal["value"] = {"amount": 5, "currency": "EUR"}  # a number where it says a string
    assert "deal.value.amount" in problems({"action": "accept", "deal": deal})


@pytest.mark.parametrize("body", [b"", b"[1]", b"{'a': 1}", b'{"action": NaN}', b"\xff"])
def test_a_body_that_is_no_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidAction):
        to_action(body, "lead-1", CALLER, "partner-1:k1", None, NOW)


class Records:
    """What the store holds of one action id: a submission and the pipeline's marker."""

    def __init__(self, submitted_by: str, handled_for: str) -> None:
        self._submitted_by = submitted_by
        self._handled_for = handled_for

    async def submission(self, message_id: str) -> Submission:
        return Submission(message_id, self._submitted_by, "lead-1", "f")

    async def remember(self, submission: Submission) -> None: ...

    async def outcome(self, message_id: str) -> ActionMarker:
        return ActionMarker(
            Outcome.REJECTED, self._handled_for, "lead-1", reason=Reason.STALE_VERSION
        )


async def test_an_action_status_is_shown_only_where_both_records_name_the_caller() -> None:
    mine = Actions(Records("partner-1", "partner-1"), Unpublished(), SystemClock())
    theirs = Actions(Records("partner-1", "partner-2"), Unpublished(), SystemClock())
    status = await mine.status("partner-1", "partner-1:k1")
    assert status is not None and status.reason is Reason.STALE_VERSION
    assert await theirs.status("partner-1", "partner-1:k1") is None
    assert await mine.status("partner-2", "partner-1:k1") is None


class Unpublished:
    async def publish(self, action: object) -> None:
        raise AssertionError("a status read publishes nothing")
