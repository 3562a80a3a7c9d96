"""MongoDB's failure paths, driven on a real server with failpoints (`configureFailPoint`,
as mongod's test commands) and a step-down: a commit that hangs, a transaction too
large for the cache, a primary that steps down mid-batch; and the URI and start-up
options the service pins whatever the operator wrote."""

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.topics import Topic
from services.dev_servers import free_port, listening, secantus_argv
from services.lifecycle.adapters.failures import classify
from services.lifecycle.adapters.mongo import COLLECTIONS, MongoStore, connect
from services.lifecycle.domain.clock import SystemClock
from services.lifecycle.domain.lead import Windows
from services.lifecycle.service_layer.failures import Failure
from services.lifecycle.service_layer.lead_service import LeadService
from services.lifecycle.service_layer.messages import Delivery, Handled
from services.lifecycle.service_layer.pipeline import Pipeline, RetryPolicy
from services.lifecycle.service_layer.ports import OutboxRow, Refusal
from services.lifecycle.settings import Settings
from tests import messages
from tests.messages import delivery

CLOCK = SystemClock()
TIMEOUT = timedelta(seconds=1)


@pytest.fixture(scope="module")
def failpoint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB of this module's own, with mongod's test commands on."""
    port = free_port()
    argv = secantus_argv(port, ":memory:", "--enable-test-commands")
    with listening("secantus-failpoints", argv, port, tmp_path_factory.mktemp("logs")):
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"


@pytest.fixture
async def client(failpoint_server: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    mongo = connect(failpoint_server, TIMEOUT)
    yield mongo
    await fail_point(mongo, "off")
    await mongo.close()


async def fail_point(mongo: AsyncMongoClient[dict[str, Any]], mode: Any, **data: Any) -> None:
    await mongo.admin.command("configureFailPoint", "failCommand", mode=mode, data=data)


class Recorded:
    """Publisher and observer of the pipeline: what it published, what it retried."""

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []
        self.retries: list[Failure] = []
        self.outcomes: list[str] = []
        self.parked_classes: list[str] = []

    async def publish(self, rows: Sequence[OutboxRow]) -> list[Refusal]:
        self.rows += rows
        return []

    def handled_batch(self, topic: str, outcomes: Sequence[Handled], seconds: float) -> None:
        self.outcomes += [h.outcome for h in outcomes]

    def retried(self, kind: Failure) -> None:
        self.retries.append(kind)

    def parked(self, error_class: str) -> None:
        self.parked_classes.append(error_class)


async def pipeline_on(
    mongo: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> tuple[Pipeline, MongoStore, Recorded]:
    store = MongoStore(mongo[settings.mongodb_database], CLOCK, timeout=TIMEOUT)
    await store.ensure_indexes()
    out = Recorded()
    policy = RetryPolicy(max_backoff=0.5, unforeseen_attempts=3, first_backoff=0.05)
    pipeline = Pipeline(LeadService(store, CLOCK, Windows()), store, out, classify, out, policy)
    await pipeline.process([delivery(Topic.PROFILES, messages.profile())])
    return pipeline, store, out


def arrivals(*lead_ids: str) -> list[Delivery]:
    return [delivery(Topic.INBOUND, messages.inbound(lead_id=lead_id)) for lead_id in lead_ids]


async def applied_once(store: MongoStore, out: Recorded, lead_ids: list[str]) -> None:
    """Each lead stored once at version 1, its three rows (event, state, notification)
    committed once, and each row
    published once or left unsent to the relay (a commit whose reply was lost)."""
    leads = await store.load_many(lead_ids)
    assert {lead_id: lead.version for lead_id, lead in leads.items()} == dict.fromkeys(lead_ids, 1)
    documents = [d async for d in store.database["outbox"].find({"lead_ids": {"$in": lead_ids}})]
    assert sorted(row["lead_id"] for d in documents for row in d["rows"]) == sorted(lead_ids * 3)
    published = [row.lead_id for row in out.rows if row.lead_id in lead_ids]
    unsent = [row["lead_id"] for d in documents if not d["sent"] for row in d["rows"]]
    assert sorted(published + unsent) == sorted(lead_ids * 3)


async def test_a_commit_that_hangs_times_out_and_the_batch_is_applied_once(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    pipeline, store, out = await pipeline_on(client, settings)
    # The server holds the commit for longer than the client waits; it then commits.
    await fail_point(
        client,
        {"times": 1},
        failCommands=["commitTransaction"],
        blockConnection=True,
        blockTimeMS=2500,
    )
    lead_ids = ["hang-1", "hang-2"]
    await asyncio.wait_for(pipeline.process(arrivals(*lead_ids)), 30)
    assert Failure.TRANSIENT in out.retries  # timed out and retried, not waited on
    await applied_once(store, out, lead_ids)
    assert out.parked_classes == []


async def test_a_transaction_too_large_for_the_cache_is_split_not_parked(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    pipeline, store, out = await pipeline_on(client, settings)
    await fail_point(client, {"times": 1}, failCommands=["commitTransaction"], errorCode=334)
    lead_ids = [f"large-{n}" for n in range(4)]
    await asyncio.wait_for(pipeline.process(arrivals(*lead_ids)), 60)
    # Split once; the halves may meet the refused transaction's writes until the
    # server drops it (a write conflict, retried): never parked, never one by one.
    assert out.retries.count(Failure.TOO_LARGE) == 1
    assert set(out.retries) <= {Failure.TOO_LARGE, Failure.TRANSIENT}
    assert out.outcomes[-4:] == ["applied"] * 4 and out.parked_classes == []
    # Committed in two halves: two outbox documents where one batch writes one.
    halves = await store.database["outbox"].count_documents({"lead_ids": {"$in": lead_ids}})
    assert halves == 2
    await applied_once(store, out, lead_ids)


async def test_a_primary_stepping_down_mid_stream_loses_and_doubles_nothing(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    pipeline, store, out = await pipeline_on(client, settings)
    lead_ids = [f"step-{n}" for n in range(30)]

    async def stream() -> None:
        for start in range(0, len(lead_ids), 3):
            await pipeline.process(arrivals(*lead_ids[start : start + 3]))

    streaming = asyncio.create_task(stream())
    while not out.rows[2:]:  # a batch or so in
        await asyncio.sleep(0.01)
    await client.admin.command("replSetStepDown", 2, force=True)
    await asyncio.wait_for(streaming, 60)
    assert Failure.TRANSIENT in out.retries  # it was in the way
    await applied_once(store, out, lead_ids)
    assert out.parked_classes == []


async def test_a_secondary_read_preference_in_the_uri_changes_nothing(settings: Settings) -> None:
    # Reads in a transaction must go to the primary: pymongo refuses the held-action
    # check of every arriving lead otherwise, and each new lead ended parked.
    mongo = connect(settings.mongodb_uri + "&readPreference=secondary&w=1", TIMEOUT)
    try:
        store = MongoStore(mongo[settings.mongodb_database], CLOCK, timeout=TIMEOUT)
        await store.ensure_indexes()
        service = LeadService(store, CLOCK, Windows())
        assert (
            await service.decide_and_commit_one(delivery(Topic.PROFILES, messages.profile()))
        ).outcome == ("applied")
        [arrived] = arrivals("secondary-1")
        assert (await service.decide_and_commit_one(arrived)).outcome == "applied"
        assert (await store.load("secondary-1")) is not None
    finally:
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


async def test_a_changed_outbox_retention_is_applied_at_the_next_start(
    mongo: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    for days in (7, 1):  # two starts, two retentions: both start
        store = MongoStore(
            mongo[settings.mongodb_database], CLOCK, outbox_retention=timedelta(days=days)
        )
        await store.ensure_indexes()
    indexes = await store.database["outbox"].index_information()
    assert indexes["sent_expiry"]["expireAfterSeconds"] == 86400


async def test_every_collection_exists_before_the_first_batch(
    mongo: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    store = MongoStore(mongo[settings.mongodb_database], CLOCK)
    await store.ensure_indexes()
    await store.ensure_indexes()  # a second replica starting: no error
    assert set(COLLECTIONS) <= set(await store.database.list_collection_names())


def test_the_relay_reads_only_majority_committed_rows(
    mongo: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    store = MongoStore(mongo[settings.mongodb_database], CLOCK)
    outbox = store.outbox._outbox
    assert outbox.read_concern.level == "majority"
    assert store.database.write_concern.document == {"w": "majority"}
    assert store.database.read_preference.mode == 0  # primary
