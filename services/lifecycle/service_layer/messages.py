"""What flows through the service layer: a record as received (`Delivery`), what
deciding one amounted to (`Outcome`, `Handled`), and a committed batch (`Committed`)."""

from dataclasses import dataclass, field
from enum import StrEnum

from contracts.topics import Reason, Topic
from services.lifecycle.service_layer.ports import OutboxRow


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as the service received it, untouched."""

    topic: Topic
    topic_name: str
    """The topic's name on the broker (with the deployment's prefix)."""
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position_key(self) -> str:
        """Dedupe key for a message whose own id cannot be read (or must not be used)."""
        return f"{self.topic.value}@{self.partition}:{self.offset}"

    @property
    def slot(self) -> str:
        return f"{self.topic.value}@{self.partition}"


class Outcome(StrEnum):
    """What one message amounted to; also its marker's `outcome` (not `duplicate`)."""

    APPLIED = "applied"
    NO_CHANGE = "no_change"
    DUPLICATE = "duplicate"
    HELD = "held"
    """Waiting for its lead."""
    REJECTED = "rejected"


@dataclass(frozen=True)
class Handled:
    """What deciding one message amounted to (for logs, metrics and tests)."""

    outcome: Outcome
    reason: Reason | None = None


DUPLICATE = Handled(Outcome.DUPLICATE)


@dataclass(frozen=True)
class Committed:
    """What a committed batch amounted to, and what it has to publish, in order."""

    outcomes: list[Handled]
    rows: list[OutboxRow] = field(default_factory=list)


def dedupe_key(topic: Topic, message_id: str) -> str:
    # message ids are unique per sending system, so per topic.
    return f"{topic.value}:{message_id}"
