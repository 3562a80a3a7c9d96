"""Erasure benchmark: one customer's erasure among N stored leads (default 100k).

Stores N leads as the service does (built by the domain's rules, with their
customer's keyed hashes), spread over 500 partners, each with a customer of its
own but one: that customer (an e-mail and a phone, written differently at each
partner) has leads at 3 partners. Beside the leads: the sent outbox documents
that published them (one per consumer batch of 300 leads, holding each lead's
`lead.received` event, state and notifications), and held actions, dead
letters and past erasures of other customers (one per 100 leads), plus one held
action and one dead letter of the erased customer. Then:

  (a) times one `erase_customer` request end to end through
      `ErasureService.decide_and_commit` (by store method, and by round trip to
      MongoDB), then the same request delivered again;
  (b) prints MongoDB's plan (executionStats) of each query the erasure runs, to
      show each is an index scan: leads, held actions and dead letters by
      `subject_keys` (dead letters by lead id too), the outbox and its set-aside
      rows by lead id, and past erasures by `subject_keys`;
  (c) times the store's own ceiling on the same server: one lead found by _id,
      replaced by _id, replaced in a transaction; one outbox document found by a
      lead id and its rows written back.

    python bench/erasure.py --leads 100000
    python bench/erasure.py --leads 2000        # a quick check
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pymongo import ASCENDING, AsyncMongoClient, ReplaceOne, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep import Timed  # adds up the time of each awaited method

from contracts.inbound import InboundLead
from contracts.profiles import PartnerProfile
from contracts.topics import Topic
from services.dev_servers import embedded_servers
from services.lifecycle.adapters import dead_letters, held, mongo, outbox
from services.lifecycle.adapters.erasures import keys_in_value
from services.lifecycle.adapters.mongo import MongoStore
from services.lifecycle.domain import lead as rules
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.domain.privacy import SubjectKeys
from services.lifecycle.service_layer.erasure import ErasureService, ErasureStore
from services.lifecycle.service_layer.messages import Delivery, dedupe_key
from services.lifecycle.service_layer.outgoing import Cause, for_decision
from services.lifecycle.service_layer.ports import (
    Change,
    DeadLetter,
    HeldAction,
    Publication,
)
from services.lifecycle.settings import Settings
from tests import messages
from tests.servers import isolated_settings

Document = dict[str, Any]

CLOCK = SystemClock()
WINDOWS = Windows()
KEYS = SubjectKeys(b"bench-erasure-key")
SOURCE = "leads-service"
EMAIL, PHONE = "Ada.Lovelace@analytical.example", "+44 20 7946 0958"
SPELLINGS = [(EMAIL, PHONE), (EMAIL.upper(), "+442079460958"), (EMAIL.lower(), "+44 (20) 79460958")]
"""How each partner's lead writes the customer's e-mail and phone."""
INSERT_BATCH = 2000


# --- what is stored -------------------------------------------------------------------


@dataclass
class Seeded:
    """Ids of what the erasure is expected to reach."""

    subject_leads: list[str] = field(default_factory=list)
    subject_partners: list[str] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def customer(n: int, subject: int | None) -> dict[str, Any]:
    if subject is None:
        return {
            "company_name": f"Company {n}",
            "contact_name": f"Contact {n}",
            "email": f"contact-{n}@company-{n}.example",
            "phone": f"+49 30 {1_000_000 + n}",
            "country": "DE",
            "company_size": "50-249",
        }
    email, phone = SPELLINGS[subject % len(SPELLINGS)]
    return {
        "company_name": "Analytical",
        "contact_name": "Ada Lovelace",
        "email": email,
        "phone": phone,
        "country": "GB",
        "company_size": "50-249",
    }


def received(
    n: int, partner_id: str, subject: int | None, profile: PartnerProfile
) -> tuple[Document, list[Publication]]:
    """A lead as the service stores it on arrival, and what its arrival published."""
    message = InboundLead.model_validate(
        messages.inbound(
            lead_id=f"lead-{n:08d}",
            message_id=f"m-{n:08d}",
            partner_id=partner_id,
            customer=customer(n, subject),
            need=f"Cloud migration of our ERP system; call {customer(n, subject)['email']}",
        )
    )
    now = CLOCK.now()
    decision = rules.receive(None, message, now, WINDOWS, profile)
    cause = Cause(message.message_id, dedupe_key(Topic.INBOUND, message.message_id))
    publications = [
        Publication(outgoing, (decision.lead.version, position))
        for position, outgoing in enumerate(for_decision(decision, cause, now))
    ]
    return mongo.to_document(decision.lead, KEYS), publications


def sent_outbox(publications: list[Publication], prefix: str) -> list[Document]:
    """The outbox documents of a batch that published these, relayed and marked sent."""
    now = CLOCK.now()
    rows = outbox.rows_for(Change(outgoing=publications), prefix, SOURCE)
    documents = outbox.pack(rows, now)
    for document in documents:
        document.update(sent=True, sent_at=now)
    return documents


def held_action(n: int, lead_id: str, partner_id: str, email: str) -> Document:
    """An action held for a lead not seen yet, whose deal notes name the customer."""
    deal = {**messages.DEAL, "notes": f"Spoke to them, {email}"}
    action = messages.action(lead_id, "accept", partner_id=partner_id, deal=deal)
    now = CLOCK.now()
    document = held.to_document(
        HeldAction(
            key=dedupe_key(Topic.PARTNER_ACTIONS, action["message_id"]),
            lead_id=lead_id,
            partner_id=partner_id,
            action=action,
            held_at=now,
            expires_at=now + timedelta(days=3650),
            arrival=(0, n),
            source_topic=Topic.PARTNER_ACTIONS.value,
        )
    )
    document["subject_keys"] = sorted(KEYS.in_document(action))
    return document


def dead_letter(n: int, lead_id: str, who: dict[str, Any]) -> Document:
    """A lead that kept failing, parked whole (with its customer)."""
    value = json.dumps(messages.inbound(lead_id=lead_id, customer=who)).encode()
    document = dead_letters.to_document(
        DeadLetter(
            id=f"dl-{n:08d}",
            topic_name=Topic.INBOUND.value,
            partition=0,
            offset=n,
            key=lead_id.encode(),
            value=value,
            headers=(),
            error_class="RuntimeError",
            error="kept failing",
            message_id=f"dm-{n:08d}",
            lead_id=lead_id,
            parked_at=CLOCK.now(),
        )
    )
    document["subject_keys"] = keys_in_value(KEYS, value)
    return document


def past_erasure(n: int) -> Document:
    """A completed erasure of another customer, as `erasures.record_write` leaves it."""
    now = CLOCK.now()
    return {
        "_id": f"past-{n:08d}",
        "subject_keys": sorted(KEYS.of(f"gone-{n}@erased.example", None)),
        "lead_ids": [f"gone-{n:08d}"],
        "partner_ids": ["p"],
        "requested_at": now,
        "erased_at": now,
        "completed_at": now,
    }


class Inserter:
    """Unordered bulk inserts of many documents at a time, per collection."""

    def __init__(self, database: AsyncDatabase[Document], seeded: Seeded) -> None:
        self._db = database
        self._pending: dict[str, list[Document]] = defaultdict(list)
        self._seeded = seeded

    async def add(self, name: str, documents: list[Document], flush_at: int) -> None:
        self._pending[name] += documents
        if len(self._pending[name]) >= flush_at:
            await self.flush(name)

    async def flush(self, name: str | None = None) -> None:
        for each in [name] if name else list(self._pending):
            batch, self._pending[each] = self._pending[each], []
            if batch:
                await self._db[each].insert_many(batch, ordered=False)
                self._seeded.stored[each] += len(batch)


async def seed(database: AsyncDatabase[Document], prefix: str, args: argparse.Namespace) -> Seeded:
    """Stores everything by unordered bulk inserts, many documents at a time."""
    leads, partners, subject_leads = args.leads, args.partners, args.subject_leads
    per_outbox, others = args.per_outbox, args.others
    seeded = Seeded()
    profiles = {
        p: PartnerProfile.model_validate(messages.profile(p))
        for p in (f"partner-{k:03d}" for k in range(partners))
    }
    partner_ids = list(profiles)
    # The customer's leads: spread over the others, each at a partner of its own.
    subject_at = {(k + 1) * leads // (subject_leads + 1): k for k in range(subject_leads)}
    inserter = Inserter(database, seeded)
    publications: list[Publication] = []
    progress = tqdm(total=leads, unit="lead", desc="storing", file=sys.stderr)
    for n in range(leads):
        subject = subject_at.get(n)
        at = n if subject is None else subject * (partners // subject_leads)
        partner_id = partner_ids[at % partners]
        document, published = received(n, partner_id, subject, profiles[partner_id])
        if subject is not None:
            seeded.subject_leads.append(document["_id"])
            seeded.subject_partners.append(partner_id)
        await inserter.add("leads", [document], INSERT_BATCH)
        publications += published
        if (n + 1) % per_outbox == 0 or n == leads - 1:
            await inserter.add("outbox", sent_outbox(publications, prefix), 20)
            publications = []
        progress.update(1)
    progress.close()
    # Other customers' held actions, dead letters and past erasures; one held
    # action and one dead letter of the erased customer.
    for n in range(others):
        email = f"other-{n}@elsewhere.example"
        who = {**customer(leads + n, None), "email": email}
        await inserter.add(
            "held_actions", [held_action(n, f"unseen-{n:08d}", "partner-000", email)], INSERT_BATCH
        )
        await inserter.add("dead_letters", [dead_letter(n, f"parked-{n:08d}", who)], INSERT_BATCH)
        await inserter.add("erasures", [past_erasure(n)], INSERT_BATCH)
    await inserter.add(
        "held_actions", [held_action(others, "unseen-subject", partner_ids[0], EMAIL)], 1
    )
    await inserter.add("dead_letters", [dead_letter(others, "parked-subject", customer(0, 0))], 1)
    await inserter.flush()
    return seeded


# --- the erasure -------------------------------------------------------------------------


class Commands(monitoring.CommandListener):
    """The client's round trips while recording, by command and collection: how long
    each took from the client's side (the server's time, and the wire's)."""

    def __init__(self) -> None:
        self.recording = False
        self._started: dict[int, str] = {}
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            name = event.command_name
            target = event.command.get(name)
            if not isinstance(target, str):
                target = event.command.get("collection", "")
            self._started[event.request_id] = f"{name} {target}".strip()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ended(event.request_id, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._ended(event.request_id, event.duration_micros)

    def _ended(self, request_id: int, micros: int) -> None:
        label = self._started.pop(request_id, None)
        if label is not None:
            self.spent[label][0] += micros / 1000
            self.spent[label][1] += 1


def erase_request(request_id: str) -> Delivery:
    request = {
        "request": "erase_customer",
        "message_id": messages.new_id("e"),
        "request_id": request_id,
        "email": EMAIL.lower(),
        "phone": "+442079460958",
        "requested_at": datetime.now(UTC).isoformat(),
    }
    return messages.delivery(Topic.PRIVACY_REQUESTS, request)


# --- plans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    label: str
    collection: str
    filter: Document
    sort: Document | None = None
    limit: int | None = None


def erasure_queries(seeded: Seeded) -> list[Query]:
    """The queries the erasure runs on what may hold the customer's data, as the
    adapters write them (`MongoStore.leads_of_subject`, `Erasures.redact`), and the
    one a later lead of theirs runs (`Erasures.erased_among`)."""
    keys = sorted(KEYS.of(EMAIL, PHONE))
    by_keys = {"subject_keys": {"$in": keys}}
    lead_ids = sorted(seeded.subject_leads)
    by_lead = {"lead_id": {"$in": lead_ids}}
    return [
        Query("leads by subject_keys", "leads", by_keys, {"_id": ASCENDING}, 200),
        Query("held_actions by subject_keys", "held_actions", by_keys),
        Query("dead_letters by subject_keys", "dead_letters", by_keys),
        Query("dead_letters by lead_id", "dead_letters", by_lead),
        Query("outbox by lead_ids", "outbox", {"lead_ids": {"$in": lead_ids}}),
        Query("outbox_set_aside by lead_id", "outbox_set_aside", by_lead),
        Query("erasures by subject_keys", "erasures", by_keys),
    ]


async def explain(database: AsyncDatabase[Document], query: Query) -> Document:
    find: Document = {"find": query.collection, "filter": query.filter}
    if query.sort:
        find["sort"] = query.sort
    if query.limit:
        find["limit"] = query.limit
    return await database.command({"explain": find, "verbosity": "executionStats"})


def stages(plan: Document | None) -> str:
    """A plan's stage tree, outermost first: `SORT > FETCH > IXSCAN(by_subject)`; an
    OR's branches in brackets."""
    if not plan:
        return "?"
    name = str(plan.get("stage", "?"))
    if name == "IXSCAN" and "indexName" in plan:
        name += f"({plan['indexName']})"
    if "inputStages" in plan:
        return name + "[" + " | ".join(stages(s) for s in plan["inputStages"]) + "]"
    if "inputStage" in plan:
        return f"{name} > {stages(plan['inputStage'])}"
    return name


def scans(plan: Document | None) -> set[str]:
    """The stage names anywhere in a plan."""
    if not plan:
        return set()
    found = {str(plan.get("stage"))}
    for child in [plan.get("inputStage"), *plan.get("inputStages", [])]:
        found |= scans(child)
    return found


@dataclass(frozen=True)
class PlanRow:
    label: str
    winning: str
    executed: str
    returned: Any
    keys: Any
    docs: Any
    millis: Any
    indexed: bool


def plan_row(label: str, explained: Document) -> PlanRow:
    winning = explained.get("queryPlanner", {}).get("winningPlan")
    stats = explained.get("executionStats", {})
    executed = stats.get("executionStages")
    used = scans(executed) | scans(winning)
    return PlanRow(
        label,
        stages(winning),
        stages(executed) if executed else "-",
        stats.get("nReturned", "-"),
        stats.get("totalKeysExamined", "-"),
        stats.get("totalDocsExamined", "-"),
        stats.get("executionTimeMillis", "-"),
        "IXSCAN" in used and "COLLSCAN" not in used,
    )


# --- the store's ceiling ---------------------------------------------------------------------


async def timed_each(times: int, call: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    """Median and 95th percentile of `times` calls, in ms."""
    spent = []
    for i in range(times):
        started = time.perf_counter()
        await call(i)
        spent.append(1000 * (time.perf_counter() - started))
    spent.sort()
    return statistics.median(spent), spent[int(0.95 * (len(spent) - 1))]


async def ceiling(database: AsyncDatabase[Document], times: int) -> dict[str, tuple[float, float]]:
    """What the server takes, outside any erasure: one lead found by _id, replaced
    whole by _id, and replaced in a transaction as a commit writes (snapshot, w:
    majority); one sent outbox document (a batch of leads' rows) found by a lead id
    and its rows written back whole, as an erasure's redaction does."""
    leads, sent = database["leads"], database["outbox"]
    documents = [d async for d in leads.find().limit(times)]
    batches = [d async for d in sent.find().limit(max(times // 10, 1))]

    async def find(i: int) -> None:
        await leads.find_one({"_id": documents[i % len(documents)]["_id"]})

    async def replace_one(i: int) -> None:
        document = documents[i % len(documents)]
        await leads.replace_one({"_id": document["_id"]}, document)

    async def in_transaction(i: int) -> None:
        document = documents[i % len(documents)]

        async def write(session: AsyncClientSession) -> None:
            await leads.bulk_write(
                [ReplaceOne({"_id": document["_id"]}, document)], session=session
            )

        async with database.client.start_session() as session:
            await session.with_transaction(write, **mongo._TRANSACTION)

    async def find_batch(i: int) -> None:
        await sent.find_one({"lead_ids": batches[i % len(batches)]["lead_ids"][0]})

    async def set_rows(i: int) -> None:
        batch = batches[i % len(batches)]
        await sent.update_one({"_id": batch["_id"]}, {"$set": {"rows": batch["rows"]}})

    return {
        "lead: find_one by _id": await timed_each(times, find),
        "lead: replace_one by _id": await timed_each(times, replace_one),
        "lead: transaction of one replace": await timed_each(times, in_transaction),
        "outbox document: find_one by lead_ids": await timed_each(len(batches), find_batch),
        "outbox document: $set its rows": await timed_each(len(batches), set_rows),
    }


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Figures:
    seeding_s: float = 0.0
    sizes: dict[str, float] = field(default_factory=dict)
    erasure_ms: float = 0.0
    outcomes: list[str] = field(default_factory=list)
    by_method: dict[str, tuple[float, int]] = field(default_factory=dict)
    by_command: dict[str, tuple[float, int]] = field(default_factory=dict)
    again_ms: float = 0.0
    again_outcomes: list[str] = field(default_factory=list)
    plans: list[PlanRow] = field(default_factory=list)
    raw_plans: list[tuple[str, Document]] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    ceilings: dict[str, tuple[float, float]] = field(default_factory=dict)


async def bench(settings: Settings, args: argparse.Namespace) -> None:
    commands = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri, tz_aware=True, appname="erasure-bench", event_listeners=[commands]
    )
    store = MongoStore(
        client[settings.mongodb_database],
        CLOCK,
        topic_prefix=settings.topic_prefix,
        subject_keys=KEYS,
    )
    database = store.database
    figures = Figures()
    try:
        await store.ensure_indexes()
        started = time.perf_counter()
        seeded = await seed(database, settings.topic_prefix, args)
        figures.seeding_s = time.perf_counter() - started
        for name in ("leads", "outbox"):
            stats = await database.command("collStats", name)
            figures.sizes[name] = stats.get("size", 0) / 1e6
        queries = erasure_queries(seeded)
        # Before the erasure (as the erasure sees them), but past erasures after it.
        explained = {q.label: await explain(database, q) for q in queries[:-1]}

        timed = Timed(store)
        service = ErasureService(cast(ErasureStore, timed), CLOCK, KEYS)
        commands.recording = True
        started = time.perf_counter()
        first = await service.decide_and_commit([erase_request("req-bench")])
        figures.erasure_ms = 1000 * (time.perf_counter() - started)
        commands.recording = False
        figures.outcomes = [h.outcome.value for h in first.outcomes]
        figures.by_method = {n: (1000 * s, timed.calls[n]) for n, s in timed.seconds.items()}
        figures.by_command = {n: (ms, int(calls)) for n, (ms, calls) in commands.spent.items()}
        started = time.perf_counter()
        again = await service.decide_and_commit([erase_request("req-bench")])
        figures.again_ms = 1000 * (time.perf_counter() - started)
        figures.again_outcomes = [h.outcome.value for h in again.outcomes]

        explained[queries[-1].label] = await explain(database, queries[-1])
        figures.plans = [plan_row(label, plan) for label, plan in explained.items()]
        figures.raw_plans = list(explained.items())
        figures.check = await check_erased(database, seeded)
        figures.ceilings = await ceiling(database, args.ceiling_calls)
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
    report(args, seeded, figures)


def _readable(value: Any) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def check_erased(database: AsyncDatabase[Document], seeded: Seeded) -> dict[str, Any]:
    """The erasure did its work: the customer's leads hold no contact data, and no
    stored copy (outbox rows, held action, dead letter) names them any more."""
    ours = [*seeded.subject_leads, "unseen-subject", "parked-subject"]
    query = {
        "$or": [{"lead_ids": {"$in": ours}}, {"lead_id": {"$in": ours}}, {"_id": {"$in": ours}}]
    }
    naming = []
    for name in ("leads", "outbox", "held_actions", "dead_letters"):
        async for document in database[name].find(query):
            dumped = json.dumps(document, default=_readable).casefold()
            if any(t.casefold() in dumped for t in (EMAIL, "7946 0958", "Ada Lovelace")):
                naming.append(f"{name}/{document['_id']}")
    record = await database["erasures"].find_one({"_id": "req-bench"}) or {}
    return {
        "still naming the customer": naming,
        "proof: leads, partners": (
            len(record.get("lead_ids", ())),
            len(record.get("partner_ids", ())),
        ),
    }


def report(args: argparse.Namespace, seeded: Seeded, f: Figures) -> None:
    stored = ", ".join(f"{n} {name}" for name, n in seeded.stored.items())
    print(f"\n{args.leads} leads at {args.partners} partners, stored in {f.seeding_s:.0f} s")
    print(f"  documents: {stored}")
    print(f"  data: leads {f.sizes['leads']:.0f} MB, outbox {f.sizes['outbox']:.0f} MB")
    print(
        f"  the customer: {len(seeded.subject_leads)} leads at "
        f"{', '.join(seeded.subject_partners)} (lead ids {', '.join(seeded.subject_leads)}), "
        "1 held action, 1 dead letter"
    )

    print("\n(a) one erasure end to end: ErasureService.decide_and_commit")
    print(f"  {'erase_customer':<44} {f.erasure_ms:9.1f} ms   {f.outcomes}")
    print("    by store method:")
    for name, (ms, calls) in f.by_method.items():
        print(f"      {name:<40} {ms:9.1f} ms   x{calls}")
    print("    by round trip to MongoDB (client-side, wire included):")
    for name, (ms, calls) in sorted(f.by_command.items(), key=lambda kv: -kv[1][0]):
        print(f"      {name:<40} {ms:9.1f} ms   x{calls}")
    in_store = sum(ms for ms, _ in f.by_command.values())
    print(f"      {'all round trips':<40} {in_store:9.1f} ms   of {f.erasure_ms:.1f} ms")
    print(
        f"  {'the same request again (answered again)':<44} {f.again_ms:9.1f} ms   "
        f"{f.again_outcomes}"
    )
    print(f"  afterwards: {json.dumps(f.check)}")

    print("\n(b) the erasure's queries: explain, executionStats")
    print(f"  {'query':<40} {'found':>5} {'keys':>6} {'docs':>6} {'ms':>4}  {'indexed':<7}  plan")
    for row in f.plans:
        print(
            f"  {row.label:<40} {row.returned!s:>5} {row.keys!s:>6} {row.docs!s:>6} "
            f"{row.millis!s:>4}  {'yes' if row.indexed else 'NO':<7}  {row.winning}"
        )
    print("  (found: nReturned, keys: totalKeysExamined, docs: totalDocsExamined)")

    print("\n(c) the store's ceiling on the same server, outside any erasure")
    for name, (median, p95) in f.ceilings.items():
        print(f"  {name:<44} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    transaction = f.ceilings["lead: transaction of one replace"][0]
    print(f"  the erasure took {f.erasure_ms / transaction:.0f} transactions of one replace")
    if args.verbose:
        for label, explanation in f.raw_plans:
            print(f"\n{label.strip()}:")
            print(json.dumps(explanation, indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000, help="leads stored")
    parser.add_argument("--partners", type=int, default=500, help="partners they are spread over")
    parser.add_argument("--subject-leads", type=int, default=3, help="the erased customer's leads")
    parser.add_argument(
        "--per-outbox",
        type=int,
        default=300,
        help="leads per sent outbox document (a consumer batch: LEADS_BATCH_MAX is 300)",
    )
    parser.add_argument(
        "--others",
        type=int,
        default=None,
        help="held actions, dead letters and past erasures of other customers "
        "(default: leads / 100)",
    )
    parser.add_argument("--ceiling-calls", type=int, default=200, help="calls per ceiling figure")
    parser.add_argument(
        "--storage",
        default=None,
        help="SecantusDB's data folder, or :memory: (default: a temporary folder)",
    )
    parser.add_argument("--verbose", action="store_true", help="print each raw explain output")
    args = parser.parse_args()
    if args.others is None:
        args.others = max(args.leads // 100, 10)
    if not 0 < args.subject_leads <= min(args.leads, args.partners):
        parser.error("--subject-leads: between 1 and the number of leads and of partners")
    # On disk by default: 100k leads and their outbox overflow the in-memory
    # server's cache (WT_CACHE_FULL, an "internal server error" on insert).
    with (
        tempfile.TemporaryDirectory(prefix="erasure-bench-") as folder,
        embedded_servers(args.storage or folder) as servers,
    ):
        asyncio.run(bench(isolated_settings(servers, "erasure"), args))


if __name__ == "__main__":
    main()
