"""Start-up refusals: each way a broker, a database or the host can refuse the
service, told in one line that names the setting to look at.

The drivers do not always say why: aiokafka answers a refused SCRAM login with a
bare `KeyError('v')` and an untrusted certificate with "Unable to bootstrap" (the
cause is only in its own log line), so a failed Kafka connection is probed again
here to find out. Secrets never reach these lines: the MongoDB URI is not quoted.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from aiokafka.errors import (
    BrokerResponseError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from pymongo.errors import (
    ConfigurationError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

if TYPE_CHECKING:
    from services.lifecycle.adapters.kafka_connection import KafkaConnection

log = logging.getLogger(__name__)

PROBE_S = 5.0
_AUTHENTICATION_FAILED = 18
_UNAUTHORIZED = 13


class Refused(Exception):
    """What refused the service and which setting to look at, in one line."""


@contextlib.asynccontextmanager
async def kafka_refusals(
    connection: "KafkaConnection", idempotent: bool = False
) -> AsyncIterator[None]:
    """Turn a Kafka client's failure to start into a `Refused` naming the setting.
    aiokafka's own error lines meanwhile go to DEBUG: the refusal says it once."""
    try:
        with _driver_lines_demoted("aiokafka"):
            yield
    except (KafkaError, KeyError) as error:
        log.debug("a Kafka client could not start", exc_info=error)
        raise await _kafka_refusal(error, connection, idempotent) from None


@contextlib.asynccontextmanager
async def mongodb_refusals(uri: str) -> AsyncIterator[None]:
    """Turn a failed MongoDB start-up call into a `Refused` naming the setting."""
    try:
        yield
    except PyMongoError as error:
        refusal = mongodb_refusal(error, uri)
        if refusal is None:
            raise
        log.debug("MongoDB refused the service", exc_info=error)
        raise refusal from None


class _Demoted(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(self._prefix):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return log.isEnabledFor(logging.DEBUG)
        return True


@contextlib.contextmanager
def _driver_lines_demoted(prefix: str) -> Iterator[None]:
    """A driver's log lines, written below the root logger, read as DEBUG for a while
    (a logger's own filters do not see its children's records; handlers' do)."""
    demoted = _Demoted(prefix)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(demoted)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(demoted)


async def _kafka_refusal(
    error: BaseException, connection: "KafkaConnection", idempotent: bool
) -> Refused:
    login = (
        f"Kafka refused the SASL {connection.sasl_mechanism} login of "
        f"{connection.sasl_username!r}: check LEADS_KAFKA_SASL_USERNAME, "
        "LEADS_KAFKA_SASL_PASSWORD and LEADS_KAFKA_SASL_MECHANISM"
    )
    if isinstance(error, UnsupportedSaslMechanismError):
        return Refused(
            f"Kafka does not offer SASL {connection.sasl_mechanism}: "
            "check LEADS_KAFKA_SASL_MECHANISM"
        )
    if isinstance(error, SaslAuthenticationFailed | IllegalSaslStateError | KeyError):
        return Refused(login)  # aiokafka's SCRAM answers a refused login with KeyError
    if isinstance(error, KafkaConnectionError):
        return Refused(
            f"cannot connect to Kafka at {connection.bootstrap_servers}: "
            + await _probe(connection)
        )
    if idempotent and isinstance(error, BrokerResponseError):
        return Refused(
            f"Kafka refused the idempotent producer ({type(error).__name__}): grant "
            "IdempotentWrite on the cluster, or set LEADS_KAFKA_IDEMPOTENCE=false for a "
            "broker without it (a retried send may then be written twice)"
        )
    return Refused(
        f"Kafka refused the service ({type(error).__name__}): check "
        "LEADS_KAFKA_BOOTSTRAP_SERVERS, LEADS_KAFKA_SECURITY_PROTOCOL and the "
        "service's ACLs"
    )


async def _probe(connection: "KafkaConnection") -> str:
    """Why the first bootstrap server cannot be used, found by connecting again."""
    host, port = connection.hosts[0]
    context = connection.ssl_context()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), PROBE_S
        )
    except ssl.SSLCertVerificationError as error:
        return (
            f"the certificate of {host}:{port} is not trusted ({error.verify_message}): "
            "check LEADS_KAFKA_SSL_CAFILE"
        )
    except ssl.SSLError as error:
        return (
            f"the TLS handshake with {host}:{port} failed ({error.reason}): check "
            "LEADS_KAFKA_SECURITY_PROTOCOL (does the listener speak TLS?)"
        )
    except (OSError, TimeoutError) as error:
        return f"{host}:{port} does not answer ({_why(error)}): check LEADS_KAFKA_BOOTSTRAP_SERVERS"
    try:
        # TLS 1.3 tells a client its certificate was refused only after the handshake.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1), 1.0)
    except (OSError, ssl.SSLError) as error:
        return (
            f"{host}:{port} closed the connection ({_why(error)}): check "
            "LEADS_KAFKA_SSL_CERTFILE and LEADS_KAFKA_SSL_KEYFILE (mutual TLS)"
        )
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return (
        f"{host}:{port} answers but not as this client expects: check "
        "LEADS_KAFKA_SECURITY_PROTOCOL (the listener may want TLS or SASL) and "
        "LEADS_KAFKA_BOOTSTRAP_SERVERS"
    )


def _why(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


def mongodb_refusal(error: PyMongoError, uri: str) -> Refused | None:
    """The one line for a MongoDB failure at start-up; None for what is not a refusal."""
    where = _hosts(uri)
    if isinstance(error, ConfigurationError):
        return Refused(f"LEADS_MONGODB_URI is not usable: {error}")
    if isinstance(error, OperationFailure) and error.code == _AUTHENTICATION_FAILED:
        return Refused(
            f"MongoDB at {where} refused the credentials: check the user and password "
            "in LEADS_MONGODB_URI (and its authSource)"
        )
    if isinstance(error, OperationFailure) and error.code == _UNAUTHORIZED:
        return Refused(
            "the MongoDB user in LEADS_MONGODB_URI is not allowed what the service does: "
            "it needs readWrite on LEADS_MONGODB_DATABASE (with createIndex and collMod)"
        )
    if isinstance(error, ServerSelectionTimeoutError):
        return Refused(f"MongoDB at {where} cannot be used: {_selection(str(error))}")
    if isinstance(error, ExecutionTimeout | NetworkTimeout):
        return Refused(
            f"MongoDB at {where} did not answer within LEADS_MONGODB_TIMEOUT: check "
            "LEADS_MONGODB_URI and the servers' health"
        )
    return None


def _selection(message: str) -> str:
    lowered = message.lower()
    if "certificate verify failed" in lowered:
        return "its certificate is not trusted: check tlsCAFile in LEADS_MONGODB_URI"
    if "ssl" in lowered or "tls" in lowered:
        return "the TLS handshake failed: check the tls options in LEADS_MONGODB_URI"
    if "replicasetnoprimary" in lowered or "no primary" in lowered:
        return "no primary answers (transactions need one): check LEADS_MONGODB_URI"
    return "it does not answer: check the hosts in LEADS_MONGODB_URI"


def _hosts(uri: str) -> str:
    """The hosts the URI names, without its credentials (and no DNS lookup)."""
    _, _, rest = uri.partition("://")
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return hosts or "LEADS_MONGODB_URI"
