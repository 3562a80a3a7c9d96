"""Drivers of the running service for end-to-end tests and benchmarks: `leads serve`
(or another `leads` command) as a child process, what an upstream system, a partner
portal and the scheduler do, and everything the service published. Fixtures that
use them live in conftest.py."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import OUTBOUND_TOPICS, Topic
from services.dev_servers import stop_process
from services.lifecycle.adapters.kafka_connection import KafkaConnection
from services.lifecycle.adapters.tokens import issue
from services.lifecycle.settings import Settings
from tests import messages

READY_TIMEOUT_S = 60.0


class ServiceProcess:
    """`leads serve` (or another `leads` command) as a child process, configured
    through LEADS_* variables; started once it logs its `ready` message."""

    def __init__(
        self,
        settings: Settings,
        command: str = "serve",
        ready: str = "service started",
        module: str = "services.lifecycle.entrypoints.cli",
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.command = command
        self.module = module
        self.extra_env = env or {}
        self.ready = f'"{ready}"'
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.environment(), **self.extra_env}

    def start(self) -> None:
        self.lines = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started = threading.Event()
        threading.Thread(target=self._read_logs, args=(started,), daemon=True).start()
        if not started.wait(READY_TIMEOUT_S):
            self.stop()
            raise RuntimeError(
                f"leads {self.command} did not start:\n" + "\n".join(self.lines[-30:])
            )

    def _read_logs(self, started: threading.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.ready in line:
                started.set()

    def cpu_seconds(self) -> float:
        """CPU the process has used so far, user and system."""
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no offset commits, no goodbyes."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM, as Kubernetes stops a pod: (exit code, seconds it took to exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started


@dataclass
class Outputs:
    """Everything the service published on its three output topics, and the
    scheduler on `leads.commands`."""

    records: list[Any] = field(default_factory=list)

    def values(self, topic: Topic) -> list[dict[str, Any]]:
        """Each record's JSON value (a tombstone, whose value is null, has none)."""
        records = (r for r in self.records if r.topic.endswith(topic.value))
        return [json.loads(r.value) for r in records if r.value is not None]

    def tombstones(self, topic: Topic) -> list[str]:
        """The keys of the records whose value is null (a key dropped by compaction)."""
        records = (r for r in self.records if r.topic.endswith(topic.value))
        return [r.key.decode() for r in records if r.value is None and r.key]

    def events(self, lead_id: str) -> list[dict[str, Any]]:
        return [e for e in self.values(Topic.EVENTS) if e["lead_id"] == lead_id]

    def event_ids(self) -> dict[str, dict[str, set[str]]]:
        """Per lead, per event type, the distinct event ids published: an event sent
        again under its id is the same event; two ids for one transition, a double."""
        found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for event in self.values(Topic.EVENTS):
            found[event["lead_id"]][event["type"]].add(event["event_id"])
        return found

    def event_types(self, lead_id: str) -> list[str]:
        return [e["type"] for e in self.events(lead_id)]

    def notifications(self, lead_id: str) -> list[dict[str, Any]]:
        return [n for n in self.values(Topic.NOTIFICATIONS) if n["lead_id"] == lead_id]

    def rejections(self, message_id: str) -> list[dict[str, Any]]:
        return [r for r in self.values(Topic.REJECTED) if r.get("message_id") == message_id]

    def commands(self, lead_id: str) -> list[dict[str, Any]]:
        """What the scheduler emitted for a lead."""
        return [c for c in self.values(Topic.COMMANDS) if c["lead_id"] == lead_id]


class ReadApi:
    """What a partner portal does: read the inbox over real HTTP, with a token."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10.0
        )

    def token(self, partner: str = messages.PARTNER, role: str = "referrals_admin") -> str:
        return issue(self.settings, partner, role, datetime.now(UTC))

    async def get(
        self, path: str, partner: str = messages.PARTNER, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(partner)}"}
        query = {k: v for k, v in params.items() if v is not None}
        return await self.client.get(path, params=query, headers=headers)

    async def until(
        self,
        path: str,
        condition: Callable[[httpx.Response], bool],
        partner: str = messages.PARTNER,
        timeout: float = 30.0,
        **params: Any,
    ) -> httpx.Response:
        """Poll `path` until `condition` holds for its answer, failing after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = await self.get(path, partner, **params)
            except httpx.ConnectError:
                # "service started" is logged just before the read API listens.
                if time.monotonic() > deadline:
                    raise
            else:
                if condition(answer):
                    return answer
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out on {path}: {answer.status_code} {answer.text}")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.client.aclose()


PROFILED_AT = datetime(2026, 1, 1, tzinfo=UTC)
"""Test partners' profiles are all this old: sending one again changes nothing."""


class Upstream:
    """What an upstream system, a partner portal or the scheduler would do: publish
    (and read the inbox)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api = ReadApi(settings)
        self.outputs = Outputs()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def connection(self) -> dict[str, Any]:
        """How its Kafka clients connect: as the service does (TLS, SASL)."""
        return KafkaConnection.of(self.settings).options()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self.connection)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *(t.named(self.settings.topic_prefix) for t in (*OUTBOUND_TOPICS, Topic.COMMANDS)),
            **self.connection,
            auto_offset_reset="earliest",
            group_id=None,  # no group to join: an observer reads every partition at once
        )
        await self._consumer.start()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            self.outputs.records.append(record)

    async def profile(self, profile: dict[str, Any]) -> None:
        """Publish a partner's profile and wait until the service has it."""
        await self.send(Topic.PROFILES, profile, key=profile["partner_id"])
        sent_at = datetime.fromisoformat(profile["updated_at"])
        await self.api.until(
            "/v1/profile",
            lambda r: (
                r.status_code == 200 and datetime.fromisoformat(r.json()["updated_at"]) == sent_at
            ),
            partner=profile["partner_id"],
        )

    async def stop(self) -> None:
        await self.api.close()
        if self._reader:
            self._reader.cancel()
        if self._producer:
            await self._producer.stop()
        if self._consumer:
            await self._consumer.stop()

    async def settled(self, timeout: float = 60.0, api: "ReadApi | None" = None) -> Outputs:
        """Everything the service has published, once nothing it committed is left
        unpublished (as `api`'s replica sees it): read afresh from the start of every
        output topic to its end."""
        await (api or self.api).until(
            "/metrics", lambda r: "\nleads_outbox_backlog 0.0" in r.text, timeout=timeout
        )
        topics = [t.named(self.settings.topic_prefix) for t in (*OUTBOUND_TOPICS, Topic.COMMANDS)]
        reader = AIOKafkaConsumer(
            *topics,
            **self.connection,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await reader.start()
        try:
            ends = await reader.end_offsets(list(reader.assignment()))
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
                assert time.monotonic() < deadline, "could not read the topics to their end"
                batch = await reader.getmany(timeout_ms=200)
                records += [r for rs in batch.values() for r in rs]
        finally:
            await reader.stop()
        return Outputs(records)

    @staticmethod
    def sent_value(message: dict[str, Any]) -> bytes:
        """The bytes `send` publishes for a message."""
        return json.dumps(message).encode()

    async def send(
        self,
        topic: Topic,
        value: dict[str, Any] | bytes,
        key: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        assert self._producer is not None
        payload = value if isinstance(value, bytes) else self.sent_value(value)
        lead_key = key or (value.get("lead_id", "") if isinstance(value, dict) else "")
        await self._producer.send_and_wait(
            topic.named(self.settings.topic_prefix),
            payload,
            key=lead_key.encode(),
            headers=headers,
        )

    async def until(
        self, condition: Callable[[Outputs], bool], timeout: float = 30.0, what: str = ""
    ) -> Outputs:
        """Poll the outputs until `condition` holds, failing after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition(self.outputs):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.05)
        return self.outputs


def leads_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`leads ARGS...` run to its end, with the settings of a service."""
    return subprocess.run(
        [sys.executable, "-m", "services.lifecycle.entrypoints.cli", *args],
        env=ServiceProcess(settings).env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextlib.contextmanager
def service_running(settings: Settings) -> Iterator[ServiceProcess]:
    with process_running(ServiceProcess(settings)) as service:
        yield service


@contextlib.contextmanager
def scheduler_running(settings: Settings, instance: str = "a") -> Iterator[ServiceProcess]:
    replica = settings.model_copy(update={"instance_id": f"{settings.instance_id}-{instance}"})
    with process_running(ServiceProcess(replica, "scheduler", "scheduler started")) as worker:
        yield worker


SWEEP_S = 0.5
RETRY_S = 2.0


def sweeping_fast(settings: Settings) -> Settings:
    """A scheduler that sweeps twice a second, re-emits after seconds and hands its
    lease over within seconds: deadlines of seconds are met in tests."""
    return settings.model_copy(
        update={
            "sweep_interval": timedelta(seconds=SWEEP_S),
            "scheduler_lease": timedelta(seconds=3),
            "command_retry_after": timedelta(seconds=RETRY_S),
        }
    )


def quiet_period() -> int:
    """Sweeps covering two retry waits, so any second emission would be seen."""
    return int(2 * RETRY_S / SWEEP_S) + 2


def sweeps(worker: ServiceProcess) -> int:
    """How often a scheduler replica has swept so far."""
    return sum('"sweep done"' in line for line in worker.lines)


async def sweeps_later(workers: list[ServiceProcess], count: int) -> None:
    """Wait until the sweeping replicas have swept `count` more times: long enough
    for a command emitted twice, or a deadline left behind, to show."""
    start = sum(sweeps(w) for w in workers)
    deadline = time.monotonic() + 30
    while sum(sweeps(w) for w in workers) - start < count:
        assert time.monotonic() < deadline, "the scheduler stopped sweeping"
        await asyncio.sleep(0.1)


async def sweeping_leader(workers: list[ServiceProcess]) -> ServiceProcess:
    """The replica that took the scheduler's lease: the first one to sweep."""
    deadline = time.monotonic() + 30
    while not any(sweeps(w) for w in workers):
        assert time.monotonic() < deadline, "no worker took the lease"
        await asyncio.sleep(0.05)
    return next(w for w in workers if sweeps(w))


@contextlib.contextmanager
def process_running(service: ServiceProcess) -> Iterator[ServiceProcess]:
    service.start()
    try:
        yield service
    finally:
        service.stop()


@contextlib.asynccontextmanager
async def upstream_of(service: ServiceProcess) -> AsyncIterator[Upstream]:
    """An upstream client of a running service whose test partners have profiles."""
    client = Upstream(service.settings)
    await client.start()
    try:
        for partner in (messages.PARTNER, "partner-2"):
            await client.profile(messages.profile(partner, updated_at=PROFILED_AT))
        yield client
    finally:
        await client.stop()
