"""Partner actions taken over HTTP, onto `leads.partner-actions` (keyed by lead, acks=all)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

from contracts.actions import PartnerAction
from contracts.topics import Topic
from services.lifecycle.adapters.kafka import KafkaPublisher, KafkaRecord
from services.lifecycle.domain.clock import Clock
from services.lifecycle.service_layer.actions import Unavailable
from services.lifecycle.service_layer.outgoing import Outgoing

log = logging.getLogger(__name__)

PROBE_S = 2.0
"""How long the broker may take to answer before an action is refused unsent."""
SEND_S = 10.0
"""How long it may take to acknowledge the action once sent."""


class KafkaActions:
    """The `ActionPublisher` port on the service's own producer.

    The broker is asked first whether it answers: when it does not, nothing is
    handed to the producer, so nothing can be delivered later behind the caller's
    back. Once handed over, an unconfirmed send is still answered "unavailable":
    the caller retries with the same Idempotency-Key and the service's dedupe by
    message_id makes it one action whichever copy arrives."""

    def __init__(
        self,
        kafka: KafkaPublisher,
        answers: Callable[[float], Awaitable[bool]],
        topic_prefix: str,
        source: str,
        clock: Clock,
    ) -> None:
        self._kafka = kafka
        self._answers = answers
        self._prefix = topic_prefix
        self._source = source
        self._clock = clock

    async def publish(self, action: PartnerAction) -> None:
        if not await self._answers(PROBE_S):
            log.warning("action not published: Kafka does not answer")
            raise Unavailable("Kafka does not answer; nothing was sent")
        record = KafkaRecord.of(self._outgoing(action), self._prefix, self._source)
        try:
            await asyncio.wait_for(self._kafka.publish_all([record]), SEND_S)
        except (KafkaError, TimeoutError) as error:
            log.warning(
                "action not confirmed by Kafka", extra={"error_class": type(error).__name__}
            )
            raise Unavailable("Kafka did not confirm the action") from None

    def _outgoing(self, action: PartnerAction) -> Outgoing:
        return Outgoing(
            Topic.PARTNER_ACTIONS,
            action.lead_id,
            action.message_id,
            f"action.{action.action}",
            self._clock.now(),
            action.model_dump_json(exclude_none=True).encode(),
        )
