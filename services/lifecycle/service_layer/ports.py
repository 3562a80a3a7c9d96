"""What the service layer needs from storage and the broker. The adapters implement it."""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from contracts.profiles import PartnerProfile
from contracts.topics import Reason
from services.lifecycle.domain.deadlines import DeadlineChanges
from services.lifecycle.domain.duplicates import LookAlike
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.privacy import Subject
from services.lifecycle.service_layer.outgoing import Outgoing


class VersionConflict(Exception):
    """Someone else changed (or created) what a decision was based on since it was
    read: read again and decide again."""


class AlreadyProcessed(VersionConflict):
    """A message's dedupe marker is already stored: its effects are already committed."""


@dataclass(frozen=True)
class Marker:
    """A handled message, remembered under its dedupe key in the same transaction as
    its effects; also what its sender can ask about it."""

    key: str
    outcome: str
    """`applied`, `no_change`, `rejected` or `held` (waiting for its lead)."""
    message_id: str | None = None
    lead_id: str | None = None
    partner_id: str | None = None
    event: str | None = None
    version: int | None = None
    """The lead's version after the change it caused."""
    reason: Reason | None = None
    detail: str | None = None


@dataclass(frozen=True)
class LeadWrite:
    lead: Lead
    expected_version: int | None
    """The version the lead was read at; None when it is new."""


@dataclass(frozen=True)
class ProfileUpdate:
    profile: PartnerProfile
    replaces: datetime | None
    """`updated_at` of the stored profile it replaces; None when there was none."""


@dataclass(frozen=True)
class HeldAction:
    """A partner action that came before its lead could be seen, waiting for it."""

    key: str
    """Its dedupe key, also its marker's."""
    lead_id: str
    partner_id: str
    action: dict[str, Any]
    """The action as decoded, in JSON form: decoded again when its lead arrives."""
    held_at: datetime
    expires_at: datetime
    arrival: tuple[int, int]
    """(partition, offset): with `held_at`, the order the actions came in."""
    source_topic: str
    """The topic's name on the broker, quoted back if it is refused."""


@dataclass(frozen=True)
class Publication:
    """An outgoing message and where it falls in its lead's order of publication."""

    message: Outgoing
    order: tuple[int, int]
    """(lead version, position): rows of one lead are published in this order."""
    trace: tuple[tuple[str, bytes], ...] = ()
    """Headers carrying the trace of the message that caused it (none when not traced)."""


@dataclass(frozen=True)
class DeadLetter:
    """A message parked after repeated unforeseen failures, untouched, for replay."""

    id: str
    topic_name: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    error_class: str
    error: str
    """What failed and where, free of personal data."""
    message_id: str | None
    lead_id: str | None
    parked_at: datetime

    @property
    def answer(self) -> str:
        """The `internal_error` detail its sender gets."""
        return (
            f"the message kept failing ({self.error_class}) and is parked on the dead-letter "
            f"topic as {self.id}; it is replayed once the cause is fixed"
        )


@dataclass
class Change:
    """Everything one batch of messages commits, all or nothing."""

    slot: str = ""
    """The input (topic and partition) the batch came from: its share of the partner tallies."""
    markers: dict[str, Marker] = field(default_factory=dict)
    settled: dict[str, Marker] = field(default_factory=dict)
    """Markers of held actions whose outcome is now known."""
    leads: dict[str, LeadWrite] = field(default_factory=dict)
    outgoing: list[Publication] = field(default_factory=list)
    deadlines: list[DeadlineChanges] = field(default_factory=list)
    hold: dict[str, HeldAction] = field(default_factory=dict)
    release: list[str] = field(default_factory=list)
    """Keys of held actions now applied or refused: they must still be held."""
    claims: list[str] = field(default_factory=list)
    """Lead ids an action is held for while no such lead exists: the hold and that
    lead's arrival must not commit side by side, each unaware of the other."""
    arrivals: dict[str, frozenset[str]] = field(default_factory=dict)
    """New leads, with the keys of the actions held for them when decided: if others
    are held by the time this commits, it was decided on an old view."""
    profiles: dict[str, ProfileUpdate] = field(default_factory=dict)
    tallies: dict[str, Counter[str]] = field(default_factory=dict)
    """Per partner whose leads changed: how its badge counts move (`tab.stage` -> delta);
    its performance figures are due again."""
    parked: list[DeadLetter] = field(default_factory=list)
    republished: dict[str, int] = field(default_factory=dict)
    """Leads whose state is published again, each at the version it must still have:
    touched in the transaction, so that a change of one committing meanwhile conflicts."""
    purged: list[Lead] = field(default_factory=list)
    """Leads deleted for good (their retention ended), as read: each must still be at
    its version; its deadlines and source key go with it."""
    erasure: "ErasureRecord | None" = None
    """An erasure's progress (its proof, once completed), with what it redacts."""

    @property
    def empty(self) -> bool:
        return not (self.markers or self.settled or self.outgoing or self.deadlines)


@dataclass(frozen=True)
class ErasureRecord:
    """How far an erasure request got; once completed, its proof. Never the
    customer's data: their keyed hashes, ids, counts and times."""

    request_id: str
    subject_keys: frozenset[str]
    requested_at: datetime
    erased_at: datetime
    """When the service first acted on it: a new lead of the customer needs consent
    given after this."""
    lead_ids: tuple[str, ...] = ()
    partner_ids: tuple[str, ...] = ()
    completed_at: datetime | None = None
    redact: Subject | None = None
    """What this page redacts beyond its leads (held actions, dead letters, outbox
    rows): never stored."""
    redact_lead_ids: tuple[str, ...] = ()
    """The leads whose outbox rows this page redacts."""

    def merged_into(self, stored: "ErasureRecord | None") -> "ErasureRecord":
        """What the store holds once this is written over `stored` (as `$addToSet`)."""
        if stored is None:
            return replace(self, redact=None, redact_lead_ids=())
        completed = [t for t in (stored.completed_at, self.completed_at) if t is not None]
        return replace(
            stored.grown(self.lead_ids, self.partner_ids),
            subject_keys=stored.subject_keys | self.subject_keys,
            completed_at=min(completed, default=None),
        )

    def grown(self, lead_ids: Sequence[str], partner_ids: Sequence[str]) -> "ErasureRecord":
        return replace(
            self,
            lead_ids=tuple(sorted({*self.lead_ids, *lead_ids})),
            partner_ids=tuple(sorted({*self.partner_ids, *partner_ids})),
        )


@dataclass(frozen=True)
class OutboxRow:
    """A committed outgoing message, waiting to be published."""

    id: Any
    topic: str
    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes | None
    """None: a tombstone (a compacted topic drops its key)."""
    lead_id: str
    order: tuple[int, int]
    """(lead version, position in its transaction): publishing order within a lead."""
    index: int = 0
    """Its position in its outbox document: with `id`, the row's own identity."""


@dataclass(frozen=True)
class Refusal:
    """A row Kafka refused for good (too large, not allowed, against a policy)."""

    row: int
    """Its position among the rows given to `publish`."""
    error: str
    """The error's class: never the row's content."""


def in_publishing_order(rows: Iterable[OutboxRow]) -> list[OutboxRow]:
    """Each lead's rows in the order they were committed (version, then position)."""
    return sorted(rows, key=lambda r: (r.lead_id, *r.order, r.id))


@dataclass(frozen=True)
class Snapshot:
    """What a batch is decided on, read before its transaction."""

    processed: frozenset[str]
    leads: Mapping[str, Lead]
    profiles: Mapping[str, PartnerProfile]
    held: Mapping[str, Sequence[HeldAction]]
    """Per lead id: actions held for it, in arrival order."""
    unsent: Sequence[OutboxRow] = ()
    """Rows of the same leads committed earlier and not yet published: they go first."""
    lookalikes: Sequence[LookAlike] = ()
    """Open leads sharing a match key with a lead the batch may open."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Lead ids by the source keys (`matching.source_key`) of the batch's new leads."""
    erased: Mapping[str, datetime] = field(default_factory=dict)
    """By the lead id of a new lead whose customer had their data erased: when."""
    subjects: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """By lead id: the keyed hashes of the customer a new lead or a reopen brings."""


class LeadStore(Protocol):
    async def processed_among(self, keys: Sequence[str]) -> frozenset[str]: ...

    async def load_many(self, lead_ids: Sequence[str]) -> dict[str, Lead]: ...

    async def versions_of(self, lead_ids: Sequence[str]) -> dict[str, int]: ...

    async def load_profiles(self, partner_ids: Sequence[str]) -> dict[str, PartnerProfile]: ...

    async def held_for(self, lead_ids: Sequence[str]) -> dict[str, list[HeldAction]]: ...

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]: ...

    async def lookalikes(self, match_keys: Sequence[str]) -> list[LookAlike]:
        """Open leads with any of these match keys, the newest `duplicates.PER_KEY` times
        as many as there are keys at most."""
        ...

    async def source_owners(self, source_keys: Sequence[str]) -> dict[str, str]:
        """The lead holding each of these source keys that one does."""
        ...

    async def erased_among(self, subject_keys: Sequence[str]) -> dict[str, datetime]:
        """Of these customers' keys (`privacy.SubjectKeys`), those erased: when, last."""
        ...

    async def commit(self, change: Change) -> list[OutboxRow]:
        """Store everything in `change` in one transaction and return its outbox rows.
        Raises VersionConflict (AlreadyProcessed among them), committing nothing."""
        ...


class Lease(Protocol):
    """One holder at a time among replicas (the relay's, the scheduler's)."""

    async def acquire(self) -> bool: ...
    async def release(self) -> None: ...


class Publisher(Protocol):
    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        """Returns once the broker has every row but those it refused for good, which
        are returned; raises when rows may still go later (they are the relay's)."""
        ...


SkipDocument = Callable[[Any, Sequence[str]], bool]
"""Whether to skip an outbox document (its id, the leads it has rows of): leave it alone."""


def skip_none(document_id: Any, lead_ids: Sequence[str]) -> bool:
    return False


class Outbox(Protocol):
    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), skip: SkipDocument = skip_none
    ) -> list[OutboxRow]:
        """Unsent rows committed at least `older_than` ago, oldest first, with every
        unsent row of the same leads, in publishing order; documents `skip` picks
        are not read."""
        ...

    async def mark_sent(self, ids: Sequence[Any]) -> None: ...

    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None:
        """Keep rows Kafka refused for good (with the error's class) out of the way of
        their documents, until an operator retries them (`leads outbox retry`)."""
        ...
