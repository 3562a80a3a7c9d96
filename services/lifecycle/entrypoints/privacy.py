"""`leads privacy erase`: an operator sends a customer's erasure request to
`privacy.requests`; the running service erases them and answers on `privacy.outcomes`.
`leads privacy backfill`: leads stored before leads kept their customer's keys get
them, so that an erasure finds them."""

import asyncio
import sys
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.privacy import EraseCustomer
from contracts.topics import Topic
from services.lifecycle import bootstrap
from services.lifecycle.adapters.kafka import KafkaPublisher, KafkaRecord
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.entrypoints.set_aside import with_store
from services.lifecycle.settings import Settings


def erase(
    settings: Settings,
    email: str | None,
    phone: str | None,
    lead_id: str | None,
    request_id: str | None,
) -> int:
    """Sends the request and prints its id (the id its outcome and proof carry)."""
    request_id = request_id or f"erasure-{uuid.uuid4()}"
    try:
        request = EraseCustomer(
            message_id=f"{request_id}:{uuid.uuid4().hex[:12]}",  # sent again, answered again
            request_id=request_id,
            email=email,
            phone=phone,
            lead_id=lead_id,
            requested_at=datetime.now(UTC),
        )
    except ValidationError as invalid:
        # Which fields, never their values: they are the customer's.
        fields = sorted({".".join(map(str, e["loc"])) or "request" for e in invalid.errors()})
        print(f"leads privacy erase: not a valid request ({', '.join(fields)})")
        return 2

    async def send() -> None:
        kafka = KafkaPublisher.of(settings, "privacy")
        await kafka.start()
        try:
            topic = Topic.PRIVACY_REQUESTS.named(settings.topic_prefix)
            value = request.model_dump_json(exclude_none=True).encode()
            await kafka.publish_all([KafkaRecord(topic, request_id.encode(), [], value)])
        finally:
            await kafka.stop()

    asyncio.run(send())
    print(
        f"erasure {request_id} sent; its outcome comes on "
        f"{Topic.PRIVACY_OUTCOMES.named(settings.topic_prefix)}"
    )
    return 0


def backfill(settings: Settings) -> int:
    async def run(store: MongoStore) -> int:
        done = await store.backfill_subject_keys()
        print(f"{done} lead(s) stored before leads kept their customer's keys now have them")
        return 0

    try:
        return asyncio.run(with_store(settings, run, keyed=True))
    except bootstrap.NoErasureKey as missing:
        print(f"leads privacy backfill: {missing}", file=sys.stderr)
        return 2
