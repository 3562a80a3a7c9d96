"""Partner actions taken over HTTP: the request made into a contract action, published
to `leads.partner-actions`, and what became of it read back.

The partner and the actor come from the token, the `message_id` from the
`Idempotency-Key`, `expected_version` from `If-Match`; the body holds only what
the action itself says. The lifecycle rules stay the one authority: this layer
checks the shape (with the contract's own models), never the rules.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, get_args

from pydantic import ValidationError

from contracts.action_status import ActionStatus
from contracts.actions import PARTNER_ACTION, PartnerAction
from contracts.topics import EventType, Reason
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.decoding import MAX_ERRORS_SHOWN, in_words
from services.lifecycle.service_layer.messages import Outcome

SET_BY_THE_SERVICE = (
    "message_id",
    "lead_id",
    "partner_id",
    "actor",
    "occurred_at",
    "expected_version",
)
"""Fields of a contract action that the service fills in, never the body."""

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
"""With the partner id (≤ 64) and a colon, a message_id stays within the contract's 128.
No colon in the key: partner ids may hold one, and `acme` + `eu:1` must never make the
same message_id as `acme:eu` + `1`."""

ACTIONS = tuple(
    get_args(variant.model_fields["action"].annotation)[0]
    for variant in get_args(get_args(PartnerAction)[0])
)


class BadRequest(ValueError):
    """A header this layer cannot use (the key, If-Match): the message says which."""


class InvalidAction(ValueError):
    """The body is not a contract action: which fields and why, never their values."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{name or '(body)'}: {message}" for name, message in problems)
        super().__init__(f"does not match the contract: {shown}")


class KeyReused(ValueError):
    """The Idempotency-Key was already used for another request."""


class Unavailable(Exception):
    """Kafka did not take the action."""


@dataclass(frozen=True)
class Caller:
    """Who acts, from the token."""

    partner_id: str
    user_id: str
    role: str


@dataclass(frozen=True)
class Submission:
    """An action this service published for a partner: who may ask about it, and
    the request's fingerprint, to tell a retry from another request under the same key."""

    message_id: str
    partner_id: str
    lead_id: str
    fingerprint: str


@dataclass(frozen=True)
class ActionMarker:
    """The handled action's marker, as the pipeline wrote it with its effects."""

    outcome: Outcome
    partner_id: str | None = None
    lead_id: str | None = None
    event: EventType | None = None
    version: int | None = None
    reason: Reason | None = None
    detail: str | None = None


class ActionRecords(Protocol):
    async def submission(self, message_id: str) -> Submission | None: ...

    async def remember(self, submission: Submission) -> None: ...

    async def outcome(self, message_id: str) -> ActionMarker | None: ...


class ActionPublisher(Protocol):
    async def publish(self, action: PartnerAction) -> None:
        """Returns once Kafka has the action (acks=all); raises `Unavailable` otherwise."""
        ...


def message_id(partner_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        raise BadRequest("an Idempotency-Key header is required (e.g. a new UUID per action)")
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadRequest("Idempotency-Key must be 1..63 characters of [A-Za-z0-9._-]")
    return f"{partner_id}:{idempotency_key}"


def expected_version(if_match: str | None) -> int | None:
    """`If-Match: "7"` (the ETag of the lead as read) is version 7; `*` or none: any."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = re.fullmatch(r'\s*"([1-9][0-9]{0,17})"\s*', if_match)
    if found is None:
        raise BadRequest('If-Match must be one ETag of the lead as read, such as "7"')
    return int(found.group(1))


def to_action(
    body: bytes, lead_id: str, caller: Caller, id_: str, version: int | None, now: datetime
) -> PartnerAction:
    """The contract action the body describes, or `InvalidAction`. Validated strictly:
    what the API documents is what it takes (no numbers for dates, no strings for ints)."""
    document = _json_object(body)
    given = [name for name in SET_BY_THE_SERVICE if name in document]
    if given:
        raise InvalidAction(
            [
                (n, "set by the service from the token, path and headers; leave it out")
                for n in given
            ]
        )
    identity = {
        "message_id": id_,
        "lead_id": lead_id,
        "partner_id": caller.partner_id,
        "actor": {"user_id": caller.user_id, "role": caller.role},
        "occurred_at": now.isoformat(),
        "expected_version": version,
    }
    try:
        action: PartnerAction = PARTNER_ACTION.validate_json(
            json.dumps({**document, **identity}), strict=True
        )
    except ValidationError as error:
        raise InvalidAction(_problems(error, document.get("action"))) from None
    return action


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InvalidAction([("", "the body is not UTF-8 JSON")]) from None
    if not isinstance(document, dict):
        raise InvalidAction([("", "the body must be a JSON object")])
    return document


def _no_constant(name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


def _problems(error: ValidationError, tag: object) -> list[tuple[str, str]]:
    """Each wrong field (the action's name left out of the path) and what is wrong."""
    found = []
    for problem in error.errors(include_input=False, include_url=False):
        path = [str(part) for part in problem["loc"]]
        if path and path[0] == tag:
            path = path[1:]
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # pydantic's message quotes the submitted tag: name the choices instead.
            path, message = ["action"], f"must be one of {', '.join(ACTIONS)}"
        else:
            message = in_words(problem)
        found.append((".".join(path), message))
    return found[:MAX_ERRORS_SHOWN]


def _fingerprint(action: PartnerAction) -> str:
    # occurred_at is the time of this request, not part of what was asked.
    canonical = action.model_dump_json(exclude={"occurred_at"})
    return hashlib.sha256(canonical.encode()).hexdigest()


class Actions:
    def __init__(self, records: ActionRecords, publisher: ActionPublisher, clock: Clock) -> None:
        self._records = records
        self._publisher = publisher
        self._clock = clock

    async def submit(
        self,
        caller: Caller,
        lead_id: str,
        idempotency_key: str | None,
        if_match: str | None,
        body: bytes,
    ) -> str:
        """Publish the action once; a retry (same key, same request) is answered the
        same and publishes nothing more. Returns its message_id."""
        id_ = message_id(caller.partner_id, idempotency_key)
        version = expected_version(if_match)
        action = to_action(body, lead_id, caller, id_, version, self._clock.now())
        submission = Submission(id_, caller.partner_id, lead_id, _fingerprint(action))
        earlier = await self._records.submission(id_)
        if earlier is not None:
            if earlier.fingerprint != submission.fingerprint:
                raise KeyReused("this Idempotency-Key was used for another request")
            return id_
        await self._publisher.publish(action)
        await self._records.remember(submission)
        return id_

    async def status(self, partner_id: str, message_id: str) -> ActionStatus | None:
        """Its status for the partner that sent it; None for anyone else, or no such action."""
        submitted = await self._records.submission(message_id)
        outcome = await self._records.outcome(message_id)
        owner = submitted.partner_id if submitted else outcome.partner_id if outcome else None
        # A parked action's record names no partner: its submission does.
        handled_for = outcome.partner_id if outcome else None
        if owner != partner_id or handled_for not in (None, partner_id):
            return None
        lead_id = submitted.lead_id if submitted else outcome.lead_id if outcome else None
        if outcome is None or outcome.outcome is Outcome.HELD:
            return ActionStatus(message_id=message_id, status="pending", lead_id=lead_id)
        # A rejection's marker has a reason and a detail; an applied one, event and version.
        return ActionStatus(
            message_id=message_id,
            status="rejected" if outcome.outcome is Outcome.REJECTED else "applied",
            lead_id=lead_id,
            event=outcome.event,
            version=outcome.version,
            reason=outcome.reason,
            detail=outcome.detail,
        )
