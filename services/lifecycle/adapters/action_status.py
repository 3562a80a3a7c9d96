"""What the read API knows of actions taken over HTTP: the `http_actions` collection
(one row per action it published, written once Kafka has it) and the pipeline's
`processed_messages` markers, which say what became of each."""

import contextlib
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.topics import EventType, Reason, Topic
from services.lifecycle.adapters import dead_letters
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.actions import ActionMarker, Submission
from services.lifecycle.service_layer.messages import Outcome, dedupe_key

Document = dict[str, Any]

SUBMISSION_RETENTION = timedelta(days=7)
"""A submission is needed while its action is pending (and to recognise a retry);
the marker answers for good after that."""


class MongoActionRecords:
    """The `ActionRecords` port."""

    def __init__(self, database: AsyncDatabase[Document], clock: Clock) -> None:
        self._submitted = database["http_actions"]
        self._processed = database["processed_messages"]
        self._dead_letters = database["dead_letters"]
        self._clock = clock

    async def ensure_indexes(self) -> None:
        await self._submitted.create_indexes(
            [
                IndexModel(
                    [("at", ASCENDING)],
                    name="retention",
                    expireAfterSeconds=int(SUBMISSION_RETENTION.total_seconds()),
                )
            ]
        )

    async def submission(self, message_id: str) -> Submission | None:
        found = await self._submitted.find_one({"_id": message_id})
        if found is None:
            return None
        return Submission(message_id, found["partner_id"], found["lead_id"], found["fingerprint"])

    async def remember(self, submission: Submission) -> None:
        document = {
            "_id": submission.message_id,
            "partner_id": submission.partner_id,
            "lead_id": submission.lead_id,
            "fingerprint": submission.fingerprint,
            "at": self._clock.now(),
        }
        # The same request sent twice at once: one row is enough.
        with contextlib.suppress(DuplicateKeyError):
            await self._submitted.insert_one(document)

    async def outcome(self, message_id: str) -> ActionMarker | None:
        found = await self._processed.find_one(
            {"_id": dedupe_key(Topic.PARTNER_ACTIONS, message_id)}
        )
        if found is not None:
            return _outcome(found)
        return await self._parked(message_id)

    async def _parked(self, message_id: str) -> ActionMarker | None:
        """An action that kept failing is marked by its Kafka position, not its id:
        until it is replayed, its status is the `internal_error` it was answered."""
        async for document in self._dead_letters.find({"message_id": message_id}):
            letter = dead_letters.from_document(document)
            if document["replayed_at"] is None and letter.topic_name.endswith(
                Topic.PARTNER_ACTIONS.value
            ):
                return ActionMarker(
                    Outcome.REJECTED,
                    None,
                    letter.lead_id,
                    reason=Reason.INTERNAL_ERROR,
                    detail=letter.answer,
                )
        return None


def _outcome(marker: Document) -> ActionMarker:
    event, reason = marker.get("event"), marker.get("reason")
    return ActionMarker(
        outcome=Outcome(marker["outcome"]),
        partner_id=marker.get("partner_id"),
        lead_id=marker.get("lead_id"),
        event=EventType(event) if event else None,
        version=marker.get("version"),
        reason=Reason(reason) if reason else None,
        detail=marker.get("detail"),
    )
