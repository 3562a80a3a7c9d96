"""The `LeadStore` and `Outbox` ports held in memory: the service layer tested in
milliseconds, with no database.

A commit checks what MongoStore checks inside its transaction (markers, lead
versions, claims and arrivals, held actions, profile guards) and raises the same
errors. It writes to copies of the tables and keeps them only once every write
has held, so a failed commit leaves nothing. Outbox documents are MongoStore's
own, packed by `outbox.pack`. Commits and reads never wait on anything, so one
event loop sees each commit whole.

`InMemoryInbox` reads the store's leads for the partner's inbox, as `MongoInbox`
reads the `leads` collection.
"""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from contracts.events import Stage, Tab
from contracts.inbox import LeadSort
from contracts.performance import PartnerPerformance
from contracts.profiles import PartnerProfile
from services.lifecycle.adapters import deadlines, erasures, held, outbox
from services.lifecycle.adapters.inbox import tab_stage
from services.lifecycle.adapters.outbox import SetAside
from services.lifecycle.domain.clock import Clock
from services.lifecycle.domain.deadlines import DeadlineChanges
from services.lifecycle.domain.duplicates import PER_KEY, LookAlike
from services.lifecycle.domain.lead import Lead
from services.lifecycle.domain.privacy import Subject, SubjectKeys
from services.lifecycle.service_layer.inbox import InboxFilter, Page, Position, position_of
from services.lifecycle.service_layer.messages import Outcome
from services.lifecycle.service_layer.ports import (
    AlreadyProcessed,
    Change,
    DeadLetter,
    ErasureRecord,
    HeldAction,
    LeadWrite,
    Marker,
    OutboxRow,
    ProfileUpdate,
    SkipDocument,
    VersionConflict,
    in_publishing_order,
    skip_none,
)

Document = dict[str, Any]
T = TypeVar("T")


class DuplicateDocument(Exception):
    """A document written twice where no check expects it (MongoDB's duplicate key
    outside the guarded writes): a fault to report, not a conflict to retry."""


@dataclass
class _Tables:
    """Everything a commit writes but the outbox, keyed as MongoStore's collections."""

    markers: dict[str, Marker] = field(default_factory=dict)
    leads: dict[str, Lead] = field(default_factory=dict)
    held: dict[str, HeldAction] = field(default_factory=dict)
    deadlines: dict[str, Document] = field(default_factory=dict)
    """Per lead id, its deadlines document, as `adapters.deadlines` stores it."""
    profiles: dict[str, PartnerProfile] = field(default_factory=dict)
    tallies: dict[str, Counter[str]] = field(default_factory=dict)
    """Per `partner_id|slot`, how the partner's badge counts moved."""
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    """Lead ids by source key: one lead per (referrer, source_lead_id)."""
    erasures: dict[str, ErasureRecord] = field(default_factory=dict)

    def copy(self) -> "_Tables":
        # Stored values are immutable or replaced whole, never changed in place.
        return replace(self, **{f.name: dict(getattr(self, f.name)) for f in fields(self)})

    def write(self, change: Change) -> None:
        """The writes of `change`, in MongoStore's order, each with its check."""
        self._mark(change.markers, change.settled)
        self._claim(change.claims)
        self._write_leads(change.leads.values())
        self._touch(change.republished)
        self._purge(change.purged)
        self._check_arrivals(change.arrivals)
        self._release(change.release)
        self._insert(self.held, change.hold, "held_actions")
        for changes in change.deadlines:
            self._schedule(changes)
        for partner_id, moves in change.tallies.items():
            self._tally(f"{partner_id}|{change.slot}", moves)
        self._replace_profiles(change.profiles.values())
        self._insert(self.dead_letters, {d.id: d for d in change.parked}, "dead_letters")
        if change.erasure is not None:
            record = change.erasure
            stored = self.erasures.get(record.request_id)
            self.erasures[record.request_id] = record.merged_into(stored)

    def _mark(self, markers: Mapping[str, Marker], settled: Mapping[str, Marker]) -> None:
        if markers.keys() & self.markers.keys():
            raise AlreadyProcessed("processed_messages: written meanwhile")
        found = [self.markers.get(key) for key in settled]
        if any(marker is None or marker.outcome != Outcome.HELD for marker in found):
            raise VersionConflict("processed_messages: settled meanwhile")
        self.markers.update({**markers, **settled})

    def _claim(self, lead_ids: Iterable[str]) -> None:
        if any(lead_id in self.leads for lead_id in lead_ids):
            raise VersionConflict("leads: a lead an action is held for arrived meanwhile")

    def _touch(self, versions: Mapping[str, int]) -> None:
        for lead_id, version in versions.items():
            stored = self.leads.get(lead_id)
            if stored is None or stored.version != version:
                raise VersionConflict("leads: changed meanwhile")
            self.leads[lead_id] = stored.model_copy(update={"revision": stored.revision + 1})

    def _purge(self, leads: Iterable[Lead]) -> None:
        for lead in leads:
            stored = self.leads.get(lead.lead_id)
            if stored is None or stored.version != lead.version:
                raise VersionConflict("leads: changed meanwhile")
            del self.leads[lead.lead_id]
            self.deadlines.pop(lead.lead_id, None)
            self.sources.pop(lead.source_key or "", None)

    def _write_leads(self, writes: Iterable[LeadWrite]) -> None:
        for write in writes:
            stored = self.leads.get(write.lead.lead_id)
            read_as = (stored.version, stored.revision) if stored else None
            if stored and read_as != (write.expected_version, write.lead.revision):
                raise VersionConflict("leads: changed meanwhile")
            if not stored and write.expected_version is not None:
                raise VersionConflict("leads: changed meanwhile")
            self.leads[write.lead.lead_id] = write.lead
            if write.expected_version is None and write.lead.source_key:
                self._own_source(write.lead.source_key, write.lead.lead_id)

    def _own_source(self, source_key: str, lead_id: str) -> None:
        if source_key in self.sources:
            raise VersionConflict("source_keys: the sender's lead was stored meanwhile")
        self.sources[source_key] = lead_id

    def _check_arrivals(self, arrivals: Mapping[str, frozenset[str]]) -> None:
        for lead_id, keys in arrivals.items():
            if {k for k, action in self.held.items() if action.lead_id == lead_id} != keys:
                raise VersionConflict("an action was held for a new lead meanwhile")

    def _release(self, keys: Sequence[str]) -> None:
        if any(key not in self.held for key in keys):
            raise VersionConflict("held_actions: released meanwhile")
        for key in keys:
            del self.held[key]

    def _schedule(self, changes: DeadlineChanges) -> None:
        lead_id = changes.lead_id
        if changes.fresh:
            self._insert(
                self.deadlines, {lead_id: deadlines.to_document(lead_id, changes.add)}, "deadlines"
            )
        elif changes.settled:
            self.deadlines.pop(lead_id, None)
        else:
            if lead_id in self.deadlines and (changes.drop_commands or changes.drop_ids):
                self.deadlines[lead_id] = _without_dropped(self.deadlines[lead_id], changes)
            if changes.add:
                self.deadlines[lead_id] = _with_added(self.deadlines.get(lead_id), changes)

    def _tally(self, tally_id: str, moves: Counter[str]) -> None:
        moved = Counter(self.tallies.get(tally_id, Counter()))
        moved.update(moves)  # not `+`: it would drop the counts that went negative
        self.tallies[tally_id] = moved

    def _replace_profiles(self, updates: Iterable[ProfileUpdate]) -> None:
        for update in updates:
            partner_id = update.profile.partner_id
            stored = self.profiles.get(partner_id)
            if (stored.updated_at if stored else None) != update.replaces:
                raise VersionConflict("partner_profiles: changed meanwhile")
            self.profiles[partner_id] = update.profile

    @staticmethod
    def _insert(table: dict[str, Any], new: Mapping[str, Any], name: str) -> None:
        if stored := sorted(new.keys() & table.keys()):
            raise DuplicateDocument(f"{name}: {stored} stored already")
        table.update(new)


def _without_dropped(document: Document, changes: DeadlineChanges) -> Document:
    """The deadlines the lead still waits on (MongoDB's `$pull` of the dropped ones)."""
    items = [
        item
        for item in document["items"]
        if item["command"] not in changes.drop_commands and item["id"] not in changes.drop_ids
    ]
    return {**document, "items": items, "rev": document["rev"] + 1}


def _with_added(document: Document | None, changes: DeadlineChanges) -> Document:
    """MongoDB's upserting `$push` and `$min` of a deal's new deadlines."""
    added = deadlines.to_document(changes.lead_id, changes.add)
    if document is None:
        return {**added, "rev": 1}
    return {
        **document,
        "items": document["items"] + added["items"],
        "next_emit_at": min(document["next_emit_at"], added["next_emit_at"]),
        "rev": document["rev"] + 1,
    }


class InMemoryOutbox:
    """The relay's view, as `MongoOutbox` keeps it: one document per committed batch
    (split when large), oldest first; rows Kafka refused for good, set aside."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._documents: dict[Any, Document] = {}
        """By id, in the order they were committed (the order of MongoDB's ObjectIds)."""
        self._set_aside: dict[str, SetAside] = {}
        self._now = now

    def _add(self, documents: Iterable[Document]) -> None:
        self._documents.update({document["_id"]: document for document in documents})

    def _unsent(self) -> list[Document]:
        return [document for document in self._documents.values() if not document["sent"]]

    async def unsent_of(self, lead_ids: Sequence[str]) -> list[OutboxRow]:
        """Every unsent row of documents that hold rows of these leads."""
        return [row for document in self._of_leads(lead_ids) for row in outbox.rows_of(document)]

    def _of_leads(self, lead_ids: Iterable[str], skip: SkipDocument = skip_none) -> list[Document]:
        wanted = set(lead_ids)
        return [
            document
            for document in self._unsent()
            if wanted.intersection(document["lead_ids"])
            and not skip(document["_id"], document["lead_ids"])
        ]

    async def pending(
        self, limit: int, older_than: timedelta = timedelta(0), skip: SkipDocument = skip_none
    ) -> list[OutboxRow]:
        """As `MongoOutbox.pending`: the oldest documents up to about `limit` rows, with
        every other unsent document of their leads; those `skip` picks are not read."""
        chosen = self._oldest(limit, self._now() - older_than, skip)
        leads = {lead_id for document in chosen for lead_id in document["lead_ids"]}
        documents = {d["_id"]: d for d in [*chosen, *self._of_leads(leads, skip)]}
        return in_publishing_order(row for d in documents.values() for row in outbox.rows_of(d))

    def _oldest(self, limit: int, cutoff: datetime, skip: SkipDocument) -> list[Document]:
        chosen: list[Document] = []
        rows = 0
        for document in self._unsent():
            if document["created_at"] > cutoff or skip(document["_id"], document["lead_ids"]):
                continue
            chosen.append(document)
            rows += document["count"]
            if rows >= limit:
                break
        return chosen

    async def mark_sent(self, ids: Sequence[Any]) -> None:
        for id_ in set(ids) & self._documents.keys():
            self._documents[id_] = {**self._documents[id_], "sent": True, "sent_at": self._now()}

    async def set_aside(self, refused: Sequence[tuple[OutboxRow, str]]) -> None:
        """Idempotent: a row is kept once, under its document's id and its place in it."""
        for row, error in refused:
            key = f"{row.id}:{row.index}"
            aside = SetAside(key, row.topic, row.lead_id, error, self._now(), len(row.value or b""))
            self._set_aside.setdefault(key, aside)

    async def set_aside_rows(self, ids: Sequence[str] | None = None) -> list[SetAside]:
        return [aside for key, aside in self._set_aside.items() if not ids or key in ids]

    async def set_aside_count(self) -> int:
        return len(self._set_aside)

    async def unsent_count(self) -> int:
        return sum(document["count"] for document in self._unsent())

    async def oldest_unsent(self) -> datetime | None:
        unsent = self._unsent()
        return unsent[0]["created_at"] if unsent else None


class InMemoryStore(InMemoryOutbox):
    """The `LeadStore` port, plus the outbox the relay drains, in memory."""

    def __init__(
        self,
        clock: Clock,
        topic_prefix: str = "",
        event_source: str = "leads-service",
        subject_keys: SubjectKeys | None = None,
    ) -> None:
        super().__init__(clock.now)
        self._keys = subject_keys or SubjectKeys(b"")
        self._clock = clock
        self._tables = _Tables()
        self._prefix, self._source = topic_prefix, event_source
        self._checkpoints: dict[str, str] = {}

    @property
    def outbox(self) -> InMemoryOutbox:
        """The relay's view (MongoStore's `outbox`): this store itself."""
        return self

    # --- reads a batch is decided on ---------------------------------------------------

    async def processed_among(self, keys: Sequence[str]) -> frozenset[str]:
        return frozenset(keys) & self._tables.markers.keys()

    async def is_processed(self, dedupe_key: str) -> bool:
        return dedupe_key in self._tables.markers

    async def load(self, lead_id: str) -> Lead | None:
        return self._tables.leads.get(lead_id)

    async def load_many(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        return _found(self._tables.leads, lead_ids)

    async def leads_after(
        self, lead_id: str | None, partner_id: str | None, limit: int
    ) -> list[Lead]:
        leads = sorted(self._tables.leads.values(), key=lambda lead: lead.lead_id)
        return [
            lead
            for lead in leads
            if (lead_id is None or lead.lead_id > lead_id)
            and (partner_id is None or lead.partner_id == partner_id)
        ][:limit]

    async def republish_checkpoint(self, run: str) -> str | None:
        return self._checkpoints.get(run)

    async def record_republish_checkpoint(self, run: str, lead_id: str | None) -> None:
        if lead_id is None:
            self._checkpoints.pop(run, None)
        else:
            self._checkpoints[run] = lead_id

    async def versions_of(self, lead_ids: Sequence[str]) -> dict[str, int]:
        return {lead_id: lead.version for lead_id, lead in (await self.load_many(lead_ids)).items()}

    async def load_profile(self, partner_id: str) -> PartnerProfile | None:
        return self._tables.profiles.get(partner_id)

    async def load_profiles(self, partner_ids: Sequence[str]) -> dict[str, PartnerProfile]:
        return _found(self._tables.profiles, partner_ids)

    async def held_for(self, lead_ids: Sequence[str]) -> dict[str, list[HeldAction]]:
        """Per lead id, the actions held for it, in the order they came."""
        found: dict[str, list[HeldAction]] = {}
        wanted = set(lead_ids)
        for action in sorted(self._tables.held.values(), key=held.arrival_order):
            if action.lead_id in wanted:
                found.setdefault(action.lead_id, []).append(action)
        return found

    async def lookalikes(self, match_keys: Sequence[str]) -> list[LookAlike]:
        wanted = set(match_keys)
        found = [lead for lead in self._tables.leads.values() if wanted & set(lead.match_keys)]
        newest = sorted(found, key=lambda lead: lead.received_at, reverse=True)
        return [lead.lookalike() for lead in newest[: PER_KEY * len(wanted)]]

    async def source_owners(self, source_keys: Sequence[str]) -> dict[str, str]:
        return _found(self._tables.sources, source_keys)

    async def erased_among(self, subject_keys: Sequence[str]) -> dict[str, datetime]:
        erased: dict[str, datetime] = {}
        for record in self._tables.erasures.values():
            for key in record.subject_keys.intersection(subject_keys):
                erased[key] = max(erased.get(key, record.erased_at), record.erased_at)
        return erased

    async def leads_of_subject(
        self, subject_keys: Sequence[str], received_by: datetime, limit: int
    ) -> list[Lead]:
        """Leads of the customer with these keys received by then, by lead id."""
        wanted = set(subject_keys)
        leads = self._tables.leads
        theirs = {
            i
            for i, lead in leads.items()
            if lead.received_at <= received_by and self._keys.of_lead(lead) & wanted
        }
        return [leads[i] for i in sorted(theirs)][:limit]

    async def ended_before(self, cutoff: datetime, limit: int) -> list[Lead]:
        ended = [
            (lead.ended_at, lead.lead_id)
            for lead in self._tables.leads.values()
            if lead.stage is Stage.ARCHIVED and lead.ended_at and lead.ended_at <= cutoff
        ]
        return [self._tables.leads[lead_id] for _, lead_id in sorted(ended)[:limit]]

    async def erasure(self, request_id: str) -> ErasureRecord | None:
        return self._tables.erasures.get(request_id)

    async def held_past(self, now: datetime, limit: int) -> list[HeldAction]:
        """Actions whose lead did not come within their grace, oldest first."""
        expired = [a for a in self._tables.held.values() if a.expires_at <= now]
        return sorted(expired, key=lambda action: action.expires_at)[:limit]

    async def held_count(self) -> int:
        return len(self._tables.held)

    # --- the batch's "transaction" -----------------------------------------------------

    async def commit(self, change: Change) -> list[OutboxRow]:
        """Everything in `change` or nothing; raises as MongoStore does."""
        rows = outbox.rows_for(change, self._prefix, self._source)
        documents = outbox.pack(rows, self._clock.now())
        tables = self._tables.copy()
        tables.write(change)
        if change.erasure is not None and change.erasure.redact is not None:
            self._redact(tables, change.erasure, change.erasure.redact)
        self._tables = tables
        self._add(documents)
        return [row for document in documents for row in outbox.rows_of(document)]

    def _redact(self, tables: _Tables, record: ErasureRecord, subject: Subject) -> None:
        """MongoStore's redaction of the copies outside the leads (`adapters.erasures`)."""
        for key, action in tables.held.items():
            if self._keys.in_document(action.action) & subject.keys:
                tables.held[key] = replace(action, action=subject.redacted(action.action))
        lead_ids = set(record.redact_lead_ids)
        for letter_id, letter in tables.dead_letters.items():
            if letter.lead_id in lead_ids or subject.keys.intersection(
                erasures.keys_in_value(self._keys, letter.value)
            ):
                value = erasures.redacted_value(subject, letter.value)
                tables.dead_letters[letter_id] = replace(letter, value=value)
                lead_ids.add(letter.lead_id or letter.id)
        for document_id, document in self._documents.items():
            if lead_ids.intersection(document["lead_ids"]):
                rows = erasures.redacted_rows(subject, document["rows"], lead_ids)
                if rows is not None:
                    self._documents[document_id] = {**document, "rows": rows}


def _found(table: Mapping[str, T], keys: Iterable[str]) -> dict[str, T]:
    return {key: table[key] for key in keys if key in table}


# --- the inbox's reads -------------------------------------------------------------------


class InMemoryInbox:
    """The `InboxReader` port on an `InMemoryStore`: the same leads in the same order
    as `MongoInbox` lists them, scoped to one partner. No performance figures: the
    scheduler computes those, and none runs here."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def _leads_of(self, partner_id: str) -> list[Lead]:
        return [
            lead for lead in self._store._tables.leads.values() if lead.partner_id == partner_id
        ]

    async def page(
        self, partner_id: str, where: InboxFilter, after: Position | None, limit: int
    ) -> Page:
        newest = where.sort is LeadSort.NEWEST

        def key(lead: Lead) -> tuple[datetime, str]:
            return position_of(lead, where.sort).key

        def past_the_cursor(lead: Lead) -> bool:
            if after is None:
                return True
            return key(lead) < after.key if newest else key(lead) > after.key

        listed = [lead for lead in self._leads_of(partner_id) if _listed(lead, where)]
        found = sorted(filter(past_the_cursor, listed), key=key, reverse=newest)
        leads = found[:limit]
        return Page(leads, position_of(leads[-1], where.sort) if len(found) > limit else None)

    async def counts(self, partner_id: str) -> dict[tuple[Tab, Stage], int]:
        """From the partner's tallies, as `MongoInbox` counts them."""
        total: Counter[str] = Counter()
        for tally_id, moves in self._store._tables.tallies.items():
            if tally_id.partition("|")[0] == partner_id:
                total.update(moves)
        return {tab_stage(key): n for key, n in total.items()}

    async def lead(self, partner_id: str, lead_id: str) -> Lead | None:
        lead = self._store._tables.leads.get(lead_id)
        return lead if lead is not None and lead.partner_id == partner_id else None

    async def performance(self, partner_id: str) -> PartnerPerformance | None:
        return None


def _listed(lead: Lead, where: InboxFilter) -> bool:
    """Whether `where` lists the lead: `MongoInbox`'s query, lead by lead."""
    if where.tab is Tab.FAVORITES:
        in_tab = lead.favorite
    else:
        in_tab = where.tab is None or lead.tab is where.tab
    expiring = where.expiring_by is None or (
        lead.stage is Stage.RECEIVED and lead.respond_by <= where.expiring_by
    )
    idle = where.sort is not LeadSort.IDLE or (
        lead.stage is Stage.ACCEPTED and lead.idle_since is not None
    )
    return (
        in_tab
        and (where.stage is None or lead.stage is where.stage)
        and (where.hot is None or lead.hot == where.hot)
        and (where.lead_type is None or lead.lead_type is where.lead_type)
        and expiring
        and idle
    )
