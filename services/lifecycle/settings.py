"""Settings from `LEADS_*` environment variables (documented in the README's table)."""

import socket
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADS_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    mongodb_database: str = "leads"
    topic_prefix: str = ""
    consumer_group: str = "leads-lifecycle"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    response_window: timedelta = timedelta(days=14)
    contact_request_window: timedelta = timedelta(hours=72)
    event_source: str = "urn:leads:lifecycle-service"
    relay_batch: int = Field(default=500, ge=1)
    relay_poll_interval: timedelta = timedelta(milliseconds=500)
    relay_lease: timedelta = timedelta(seconds=10)
    outbox_retention: timedelta = timedelta(days=7)
    instance_id: str = Field(default_factory=lambda: socket.gethostname())
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # The deadline worker (`leads scheduler`).
    sweep_interval: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    scheduler_lease: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    sweep_batch: int = Field(default=1000, ge=1)
    reminder_offsets: Annotated[tuple[timedelta, ...], NoDecode] = (
        timedelta(hours=72),
        timedelta(hours=24),
    )
    """How long before `respond_by` the partner is reminded; fixed for a lead when it arrives."""
    command_retry_after: timedelta = Field(default=timedelta(minutes=5), gt=timedelta(0))
    # The read API (`leads serve`).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    jwt_secret: SecretStr | None = None
    """HS256 key of the bearer tokens."""
    jwt_public_key: str | None = None
    """PEM public key of the bearer tokens (RS256 or ES256), instead of a secret."""
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    token_ttl: timedelta = Field(default=timedelta(hours=8), gt=timedelta(0))
    """How long a token made by `leads token` is valid."""
    # Responsiveness feedback (`leads scheduler`).
    performance_interval: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    """How often changed partners' figures are recomputed and published, at most."""
    # The read API's cursors (`leads serve`).
    cursor_secret: SecretStr | None = None
    """HMAC key of `next_cursor`; random per process when unset (replicas need one shared)."""

    @field_validator("reminder_offsets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(
                _DURATION.validate_python(v.strip()) for v in value.split(",") if v.strip()
            )
        return value

    @field_validator("reminder_offsets")
    @classmethod
    def _positive(cls, offsets: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(offset <= timedelta(0) for offset in offsets):
            raise ValueError("reminder offsets are durations before the deadline: give them > 0")
        return offsets

    def environment(self) -> dict[str, str]:
        """These settings as the LEADS_* variables that reproduce them in another process."""
        values = self.model_dump(mode="json")
        values["reminder_offsets"] = ",".join(values["reminder_offsets"])
        for name in ("jwt_secret", "cursor_secret"):
            secret = getattr(self, name)
            if secret is not None:
                values[name] = secret.get_secret_value()
        return {
            f"LEADS_{name.upper()}": str(value)
            for name, value in values.items()
            if value is not None
        }
