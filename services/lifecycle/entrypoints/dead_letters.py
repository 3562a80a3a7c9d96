"""`leads dead-letters list | replay`: what is parked, and sending it back once fixed."""

import asyncio
import sys
from datetime import UTC, datetime

from services.lifecycle.adapters.dead_letters import DeadLetters
from services.lifecycle.adapters.kafka import KafkaPublisher, KafkaRecord
from services.lifecycle.adapters.mongo import connect
from services.lifecycle.settings import Settings


def list_parked(settings: Settings) -> int:
    async def run() -> None:
        client = connect(settings.mongodb_uri)
        try:
            parked = await DeadLetters(client[settings.mongodb_database]["dead_letters"]).parked()
        finally:
            await client.close()
        if not parked:
            print("nothing is parked")
        for letter, replayed_at in parked:
            # Ids, places and error classes only: the value may hold personal data.
            print(
                f"{letter.id}  parked {letter.parked_at.isoformat()}  "
                f"{letter.topic_name}[{letter.partition}]@{letter.offset}  "
                f"message_id={letter.message_id or '-'}  lead_id={letter.lead_id or '-'}  "
                f"{letter.error}  "
                + (f"replayed {replayed_at.isoformat()}" if replayed_at else "not replayed")
            )

    asyncio.run(run())
    return 0


def replay(settings: Settings, ids: list[str] | None) -> int:
    """Publish parked messages back to their source topic, untouched; once handled
    anew, the usual dedupe applies. Without ids: every one not replayed yet."""

    async def run() -> int:
        client = connect(settings.mongodb_uri)
        kafka = KafkaPublisher.of(settings, "replay")
        letters = DeadLetters(client[settings.mongodb_database]["dead_letters"])
        await kafka.start()
        try:
            parked = await letters.parked(ids)
            missing = set(ids or ()) - {letter.id for letter, _ in parked}
            for letter_id in sorted(missing):
                print(f"no parked message {letter_id}", file=sys.stderr)
            for letter, replayed_at in parked:
                if replayed_at is not None and not ids:
                    continue
                record = KafkaRecord(
                    letter.topic_name, letter.key, list(letter.headers), letter.value
                )
                await kafka.publish_all([record])
                await letters.mark_replayed(letter.id, datetime.now(UTC))
                print(f"replayed {letter.id} to {letter.topic_name}")
            return 1 if missing else 0
        finally:
            await kafka.stop()
            await client.close()

    return asyncio.run(run())
