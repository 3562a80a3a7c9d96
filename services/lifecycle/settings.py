"""Settings from `LEADS_*` environment variables (documented in the README's table)."""

import socket
from datetime import timedelta
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
