"""What the deployment files may set: LEADS_* variables and the scheduler's HTTP paths."""

import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from unittest import mock

from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from services.lifecycle.entrypoints.app import LifecycleApp
from services.lifecycle.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
PREFIX = "LEADS_"

# What `leads scheduler` serves on LEADS_SCHEDULER_HTTP_PORT;
# tests/e2e/test_metrics_exported.py reads both from a running worker.
SCHEDULER_PATHS = frozenset({"/healthz", "/metrics"})

SECRET_SETTINGS = frozenset(
    {
        "LEADS_MONGODB_URI",
        "LEADS_JWT_SECRET",
        "LEADS_JWT_PUBLIC_KEY",
        "LEADS_CURSOR_SECRET",
        "LEADS_ERASURE_KEY",
        "LEADS_KAFKA_SASL_PASSWORD",
    }
)
"""Never in a ConfigMap or a file in the repository."""

TLS_DIR = PurePosixPath("/etc/leads")
"""Where compose and Kubernetes mount TLS files, so deploy/README's paths serve both."""


def variable(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


KAFKA_CONNECTION_SETTINGS = frozenset(
    variable(field)
    for field in Settings.model_fields
    if field == "kafka_bootstrap_servers"
    or field.startswith(("kafka_security", "kafka_sasl", "kafka_ssl"))
)
"""How every Kafka client reaches the brokers: what a secured cluster needs set."""


def unknown_settings(names: Iterable[str]) -> list[str]:
    """The LEADS_* names among `names` that the service does not read."""
    known = {variable(field) for field in Settings.model_fields}
    return sorted(n for n in names if n.startswith(PREFIX) and n not in known)


def settings_from(env: Mapping[str, str]) -> Settings:
    """Settings as `leads serve` reads them from this environment."""
    given = {name: value for name, value in env.items() if name.startswith(PREFIX)}
    with mock.patch.dict(os.environ, given, clear=True):
        return Settings()


def effective(env: Mapping[str, str], name: str) -> str:
    """The value the process runs with: the one set, else the setting's default."""
    if name in env:
        return env[name]
    return str(getattr(settings_from({}), name.removeprefix(PREFIX).lower()))


def duration(value: str) -> timedelta:
    """An ISO 8601 duration, read the way the service reads its settings."""
    return TypeAdapter(timedelta).validate_python(value)


@cache
def served_paths() -> frozenset[str]:
    """The paths `leads serve` answers over HTTP: its FastAPI app's routes."""
    app = LifecycleApp(Settings(jwt_secret="deploy-tests-only", erasure_key="deploy-tests-only"))
    return frozenset(route.path for route in app.api.routes if isinstance(route, APIRoute))
