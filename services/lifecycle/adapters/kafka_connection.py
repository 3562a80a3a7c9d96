"""How every Kafka client reaches the brokers: bootstrap servers, TLS and SASL.

One place gives the consumer, every producer, the admin client, the FastStream
broker and the readiness probe the same options, so a secured cluster is reached
by all of them or refused at start-up, never by some of them only.
"""

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import SecretStr

from services.lifecycle.adapters.refusals import Refused
from services.lifecycle.settings import Settings

_FASTSTREAM_SASL = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> "KafkaConnection":
        return cls(
            settings.kafka_bootstrap_servers,
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            settings.kafka_sasl_password,
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
        )

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def hosts(self) -> list[tuple[str, int]]:
        """The bootstrap servers as (host, port)."""
        found = []
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            found.append((host.strip("[]") or server.strip(), int(port or 9092)))
        return found

    def ssl_context(self) -> ssl.SSLContext | None:
        """The brokers' certificates checked against LEADS_KAFKA_SSL_CAFILE (the system's
        CAs when unset), with the client certificate for mutual TLS when given."""
        if not self.tls:
            return None
        context: ssl.SSLContext = _read("LEADS_KAFKA_SSL_CAFILE", self.ssl_cafile, _trusting)
        if self.ssl_certfile is not None:
            _read(
                "LEADS_KAFKA_SSL_CERTFILE and LEADS_KAFKA_SSL_KEYFILE",
                self.ssl_certfile,
                lambda cert: context.load_cert_chain(cert, self.ssl_keyfile),
            )
        return context

    def options(self) -> dict[str, Any]:
        """aiokafka's connection options, the same for every client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = _revealed(self.sasl_password)
        return options

    def faststream_security(self) -> BaseSecurity | None:
        """The same, in the form FastStream's broker takes (and documents in AsyncAPI)."""
        if self.security_protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if not self.sasl:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        sasl = _FASTSTREAM_SASL[self.sasl_mechanism]
        return sasl(
            self.sasl_username or "",
            _revealed(self.sasl_password),
            ssl_context=context,
            use_ssl=self.tls,
        )


def _trusting(cafile: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def _read(setting: str, path: Path | None, load: Callable[[Any], Any]) -> Any:
    try:
        return load(path)
    except (OSError, ssl.SSLError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise Refused(f"{setting}: cannot read {path}: {reason}") from None


def _revealed(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""
