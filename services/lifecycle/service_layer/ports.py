"""What the service layer needs from storage. The MongoDB adapter implements it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from contracts.profiles import PartnerProfile
from services.lifecycle.domain.deadlines import DeadlineChanges
from services.lifecycle.domain.lead import Lead
from services.lifecycle.service_layer.outgoing import Outgoing


class VersionConflict(Exception):
    """Someone else changed (or created) the lead since it was loaded: load and decide again."""


class AlreadyProcessed(Exception):
    """The message's dedupe marker is already stored: its effects are already committed."""


@dataclass(frozen=True)
class Change:
    """Everything one handled message commits, all or nothing."""

    dedupe_key: str
    lead: Lead | None = None
    expected_version: int | None = None
    """The version the lead was loaded at; None when the lead is new."""
    outgoing: tuple[Outgoing, ...] = ()
    deadlines: DeadlineChanges | None = None
    profile: "ProfileUpdate | None" = None


@dataclass(frozen=True)
class ProfileUpdate:
    profile: PartnerProfile
    replaces: datetime | None
    """`updated_at` of the stored profile it replaces; None when there was none."""


class LeadStore(Protocol):
    async def is_processed(self, dedupe_key: str) -> bool: ...

    async def load(self, lead_id: str) -> Lead | None: ...

    async def load_profile(self, partner_id: str) -> PartnerProfile | None: ...

    async def commit(self, change: Change) -> None:
        """Store marker, lead, outbox rows and deadline changes in one transaction.
        Raises VersionConflict or AlreadyProcessed, committing nothing."""
        ...


class Lease(Protocol):
    """One holder at a time among replicas (the relay's, the scheduler's)."""

    async def acquire(self) -> bool: ...
    async def release(self) -> None: ...


@dataclass(frozen=True)
class OutboxRow:
    """A committed outgoing message, waiting for the relay."""

    id: Any
    topic: str
    key: str
    headers: list[tuple[str, bytes]]
    value: bytes
    lead_id: str
    order: tuple[int, int]
    """(lead version, position in its transaction): publishing order within a lead."""
