"""Each way a server or the host can refuse the service at start-up ends `leads serve`
and `leads scheduler` with one ERROR line naming the setting to look at and a non-zero
exit: no traceback to scroll through, nothing left running. (Secured clusters'
refusals, a wrong password or an untrusted certificate: test_secured_connections.py.)"""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from services.dev_servers import Servers
from services.lifecycle.settings import Settings
from tests.servers import isolated_settings


def refusal(settings: Settings, command: str = "serve") -> tuple[int, list[str]]:
    """Run `leads COMMAND` until it gives up: its exit code and its log lines."""
    ran = subprocess.run(
        [sys.executable, "-m", "services.lifecycle.entrypoints.cli", command],
        env={**os.environ, **settings.environment()},
        capture_output=True,
        timeout=120,
    )
    return ran.returncode, ran.stderr.decode().splitlines()


def one_error(lines: list[str], *named: str) -> str:
    """The one ERROR line among `lines`, naming each of `named`; no traceback."""
    errors = [line for line in lines if '"ERROR"' in line]
    assert len(errors) == 1, lines
    assert not [line for line in lines if "Traceback" in line], lines
    for setting in named:
        assert setting in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "scheduler"])
def test_a_broker_refusing_the_idempotent_producer_names_the_setting(
    servers: Servers, command: str
) -> None:
    # The embedded broker refuses InitProducerId, as a cluster without IdempotentWrite.
    settings = isolated_settings(servers, "idempotent").model_copy(
        update={"kafka_idempotence": True}
    )
    code, lines = refusal(settings, command)
    assert code == 1
    assert "idempotent producer" in one_error(lines, "LEADS_KAFKA_IDEMPOTENCE")


@pytest.mark.parametrize(
    ("command", "setting"),
    [("serve", "LEADS_HTTP_PORT"), ("scheduler", "LEADS_SCHEDULER_HTTP_PORT")],
)
def test_a_port_taken_by_another_process_names_the_setting(
    servers: Servers, taken_port: int, command: str, setting: str
) -> None:
    field = setting.removeprefix("LEADS_").lower()
    settings = isolated_settings(servers, "port").model_copy(update={field: taken_port})
    code, lines = refusal(settings, command)
    assert code == 1
    assert "Address already in use" in one_error(lines, setting)


def test_nothing_answering_at_the_bootstrap_servers_names_the_setting(servers: Servers) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
        settings = isolated_settings(servers, "nowhere").model_copy(
            update={"kafka_bootstrap_servers": nowhere}
        )
        code, lines = refusal(settings)
    assert code == 1
    one_error(lines, "LEADS_KAFKA_BOOTSTRAP_SERVERS", nowhere)


def test_an_invalid_setting_is_named_before_anything_starts(servers: Servers) -> None:
    settings = isolated_settings(servers, "invalid")
    env = {**os.environ, **settings.environment(), "LEADS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    ran = subprocess.run(
        [sys.executable, "-m", "services.lifecycle.entrypoints.cli", "serve"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert ran.returncode == 2
    assert ran.stderr.decode().splitlines() == [
        "leads serve: LEADS_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs LEADS_KAFKA_SASL_USERNAME "
        "and LEADS_KAFKA_SASL_PASSWORD"
    ]
