"""Settings from `LEADS_*` environment variables (documented in the README's table)."""

import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADS_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How every Kafka client connects (consumer, producers, admin, readiness).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    """CA bundle the brokers' certificates are checked against; the system's when unset."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate (PEM) for mutual TLS, with LEADS_KAFKA_SSL_KEYFILE."""
    kafka_ssl_keyfile: Path | None = None
    kafka_group_instance_id: str | None = None
    """Static group membership: a replica restarted under the same id within the session
    timeout gets its partitions back without a rebalance. Unique per replica."""
    kafka_session_timeout: timedelta = Field(
        default=timedelta(seconds=10), ge=timedelta(seconds=1), le=timedelta(minutes=30)
    )
    """How long the group waits for a silent replica before moving its partitions; with
    static membership, long enough to cover a restart."""
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?replicaSet=rs0"
    """TLS and credentials go here too (`tls=true&tlsCAFile=...`, `user:password@`)."""
    mongodb_database: str = "leads"
    mongodb_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    """Client-side bound of one MongoDB call, and of a batch's whole transaction with
    its retries (pymongo's timeoutMS): a server that hangs fails the call, it is retried."""
    topic_prefix: str = ""
    consumer_group: str = "leads-lifecycle"
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    response_window: timedelta = timedelta(days=14)
    contact_request_window: timedelta = timedelta(hours=72)
    duplicate_window: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    """How far back an open lead of the same partner may be to flag a new one as its duplicate."""
    undo_window: timedelta = Field(default=timedelta(days=7), ge=timedelta(0))
    """How long after its decline a partner may undo it (`undo_decline`)."""
    reopen_window: timedelta = Field(default=timedelta(days=30), ge=timedelta(0))
    """How long after a lead was declined or expired its referrer may reopen it."""
    deal_nudge_after: timedelta = Field(default=timedelta(days=14), gt=timedelta(0))
    """How long an accepted deal may go unmoved before its partner's contacts are nudged."""
    deal_escalate_after: timedelta = Field(default=timedelta(days=21), gt=timedelta(0))
    """How long unmoved before the partner's admins are told (`lead.deal_idle`)."""
    close_date_grace: timedelta = Field(default=timedelta(days=7), ge=timedelta(0))
    """How long after its expected close date an open deal is flagged (`lead.close_date_passed`)."""
    deal_auto_close_after: timedelta | None = Field(default=None, gt=timedelta(0))
    """When set: how long unmoved before the service closes a deal as lost (`no_update`)."""
    event_source: str = "urn:leads:lifecycle-service"
    relay_batch: int = Field(default=500, ge=1)
    relay_poll_interval: timedelta = timedelta(milliseconds=500)
    relay_lease: timedelta = timedelta(seconds=10)
    relay_after: timedelta = Field(default=timedelta(seconds=2), gt=timedelta(0))
    """The consumer publishes what it commits at once; rows still unsent this long after
    their commit (a crash, the broker away) are the relay's."""
    outbox_retention: timedelta = timedelta(days=7)
    # The consumer: batches per partition, partitions side by side.
    batch_max: int = Field(default=300, ge=1)
    """Records of one partition decided and committed in one transaction, at most: about
    three documents each, so a full batch stays near the ~1,000 documents per
    transaction MongoDB advises."""
    batch_wait: timedelta = Field(default=timedelta(milliseconds=5), ge=timedelta(0))
    """How long a batch may wait to fill once its first record is there."""
    kafka_fetch_max_wait: timedelta = Field(
        default=timedelta(milliseconds=100), ge=timedelta(0), le=timedelta(seconds=1)
    )
    """How long the broker may hold a fetch while it has no new records."""
    kafka_max_poll_records: int = Field(default=2000, ge=1)
    """Records handed over per poll across all of this replica's partitions, at most."""
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    """Compression of every batch the service and the scheduler publish."""
    kafka_idempotence: bool = True
    publish_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    """How long a publish may wait for the broker's acknowledgements; rows not confirmed
    by then are the relay's (an idempotent producer never gives up on its own)."""
    """The idempotent producer: a retried send is never written twice. The embedded dev
    broker (Tansu) refuses the version of InitProducerId aiokafka sends, so `leads dev`
    and the tests on it turn this off."""
    retry_max_backoff: timedelta = Field(default=timedelta(seconds=5), gt=timedelta(0))
    """Ceiling of the wait between retries of a failure that may pass."""
    unforeseen_attempts: int = Field(default=3, ge=1)
    """Tries of a message that keeps failing for no foreseen reason before it is parked
    on leads.dead-letter."""
    early_action_grace: timedelta = Field(default=timedelta(minutes=10), gt=timedelta(0))
    """How long a partner action waits for its lead before it is refused unknown_lead."""
    shutdown_grace: timedelta = Field(default=timedelta(seconds=10), gt=timedelta(0))
    """How long a stopping replica may take to finish the batch in hand and hand over."""
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
    scheduler_http_port: int = Field(default=8081, ge=0, le=65535)
    """Where `leads scheduler` serves /healthz and /metrics (on LEADS_HTTP_HOST)."""
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
    lead_retention: timedelta | None = Field(default=None, gt=timedelta(0))
    """How long an archived lead is kept after it ended, then deleted for good (its
    key dropped from `leads.state` by a tombstone); none: kept for good."""
    # Erasure (`leads serve`).
    erasure_key: SecretStr | None = None
    """Key of the hashes that find a customer's data and prove their erasure: the same
    on every replica of `leads serve` and `leads scheduler`, kept apart from the
    database, never changed (erased customers would no longer be recognised).
    Required but by `leads dev`, which has one of its own."""

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"LEADS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "LEADS_KAFKA_SASL_USERNAME and LEADS_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError(
                "mutual TLS needs both LEADS_KAFKA_SSL_CERTFILE and LEADS_KAFKA_SSL_KEYFILE"
            )
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile)
        if not self.kafka_security_protocol.endswith("SSL") and any(tls_files):
            raise ValueError(
                f"LEADS_KAFKA_SSL_* files are set but LEADS_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not use TLS: say SSL or SASL_SSL"
            )
        return self

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
        for name in ("jwt_secret", "cursor_secret", "kafka_sasl_password"):
            secret = getattr(self, name)
            if secret is not None:
                values[name] = secret.get_secret_value()
        return {
            f"LEADS_{name.upper()}": str(value)
            for name, value in values.items()
            if value is not None
        }
