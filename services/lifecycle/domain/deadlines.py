"""Deadlines: the system commands a lead waits on, and when each falls due.

A lead gets its deadlines when it arrives (expiry, reminders before it, the end
of a contact request) and drops them as it stops waiting on them. An accepted deal
gets its own (`stale_deals`), set anew each time its idle clock moves. The scheduler
worker emits each due deadline as a command whose id is derived from (lead,
command, due time), so emitting it twice is applying it once.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.commands import COMMAND, Command
from contracts.events import IdleStep, Stage
from services.lifecycle.domain import stale_deals
from services.lifecycle.domain.ids import derived_uuid
from services.lifecycle.domain.lead import Lead, Windows

CommandName = Literal[
    "expire",
    "remind",
    "age_contact_request",
    "deal_nudge",
    "deal_escalate",
    "close_date_passed",
    "auto_close",
]
DEAL_COMMANDS: frozenset[CommandName] = frozenset(
    {"deal_nudge", "deal_escalate", "close_date_passed", "auto_close"}
)

_ID_NAMESPACE = uuid.UUID("3f0c9a57-6f1e-4b8e-9d52-0d6c1b7e4a20")


@dataclass(frozen=True)
class Deadline:
    lead_id: str
    command: CommandName
    due_at: datetime
    remaining: timedelta | None = None
    """For a reminder: how long before the lead's expiry it falls."""

    @property
    def command_id(self) -> str:
        key = f"{self.lead_id}\x1f{self.command}\x1f{self.due_at.isoformat()}"
        return derived_uuid(_ID_NAMESPACE, key)

    def to_command(self) -> Command:
        fields: dict[str, object] = {
            "command": self.command,
            "message_id": self.command_id,
            "lead_id": self.lead_id,
            "due_at": self.due_at,
        }
        if self.remaining is not None:
            fields["remaining"] = self.remaining
        return COMMAND.validate_python(fields)


@dataclass(frozen=True)
class DeadlineChanges:
    """How one handled message changes a lead's deadlines, committed with it."""

    lead_id: str
    add: tuple[Deadline, ...] = ()
    fresh: bool = False
    """`add` is every deadline the lead has: it has just arrived or been reopened."""
    drop_commands: frozenset[CommandName] = frozenset()
    """Every deadline of these commands: the lead no longer waits on them."""
    drop_ids: tuple[str, ...] = ()
    """Single deadlines that were answered."""
    settled: bool = False
    """The lead waits on no deadline any more: every one of them goes."""


def deadlines_of(lead: Lead, windows: Windows) -> tuple[Deadline, ...]:
    """The deadlines of a lead that has just arrived (or been reopened)."""
    found = [Deadline(lead.lead_id, "expire", lead.respond_by)]
    for offset in sorted(set(windows.reminders), reverse=True):
        due = lead.respond_by - offset
        # A reminder that would fall before the lead arrived has nothing to remind of.
        if due > lead.received_at:
            found.append(Deadline(lead.lead_id, "remind", due, remaining=offset))
    if lead.hot and lead.hot_until is not None:
        found.append(Deadline(lead.lead_id, "age_contact_request", lead.hot_until))
    return tuple(found)


def deal_deadlines(lead: Lead, windows: Windows) -> tuple[Deadline, ...]:
    """An accepted deal's: the idle alerts not sent since it last moved, its
    automatic close when configured, its close date not flagged yet."""
    if lead.stage is not Stage.ACCEPTED or lead.idle_since is None:
        return ()
    found = []
    if lead.idle_step is None:
        found.append(Deadline(lead.lead_id, "deal_nudge", lead.idle_since + windows.deal_nudge))
    if lead.idle_step is not IdleStep.ESCALATE:
        escalates = lead.idle_since + windows.deal_escalate
        found.append(Deadline(lead.lead_id, "deal_escalate", escalates))
    if windows.deal_auto_close is not None:
        closes = lead.idle_since + windows.deal_auto_close
        found.append(Deadline(lead.lead_id, "auto_close", closes))
    if (passes := stale_deals.close_date_passes(lead, windows)) is not None:
        found.append(Deadline(lead.lead_id, "close_date_passed", passes))
    return tuple(found)


def waits_on(lead: Lead, windows: Windows) -> frozenset[CommandName]:
    """The commands a lead in this state can still be changed by."""
    waiting: set[CommandName] = {d.command for d in deal_deadlines(lead, windows)}
    if lead.stage is Stage.RECEIVED:
        waiting |= {"expire", "remind"}
    if lead.hot and lead.stage is not Stage.ARCHIVED:
        waiting.add("age_contact_request")
    return frozenset(waiting)


def _deal_clock(lead: Lead) -> tuple[object, ...]:
    """What an accepted deal's deadlines follow from."""
    close_date = lead.deal.estimated_close_date if lead.deal else None
    return (lead.stage, lead.idle_since, lead.idle_step, close_date, lead.close_date_flagged)


def changes(
    before: Lead | None, after: Lead, windows: Windows, answered: Command | None = None
) -> DeadlineChanges | None:
    """Deadlines added when a lead arrives (or is reopened), dropped when it stops
    waiting on them, and a reminder dropped once handled; an accepted deal's set
    anew whenever its idle clock moved. None when nothing changes."""
    if before is None or (before.stage is Stage.ARCHIVED and after.stage is not Stage.ARCHIVED):
        return DeadlineChanges(after.lead_id, deadlines_of(after, windows), fresh=True)
    waited = waits_on(before, windows)
    drop = waited - waits_on(after, windows)
    add: tuple[Deadline, ...] = ()
    if _deal_clock(before) != _deal_clock(after):
        drop |= waited & DEAL_COMMANDS  # their times moved: set anew
        add = deal_deadlines(after, windows)
    # An expiry or cool-down that came early stays due: the lead still waits on it.
    drop_ids = (answered.message_id,) if answered and answered.command == "remind" else ()
    if not (add or drop or drop_ids):
        return None
    settled = not waits_on(after, windows)
    return DeadlineChanges(
        after.lead_id, add, drop_commands=drop, drop_ids=drop_ids, settled=settled
    )
