"""Kafka and MongoDB behind TLS and SCRAM, without Docker, for tests of secured connections.

- Certificates are made at test time: a CA, a server certificate for 127.0.0.1 and
  localhost, a client certificate (mutual TLS), and an unrelated CA (untrusted).
- Tansu 0.6 cannot serve TLS from its command line (`--cert` and `--key` refuse each
  other), so a TLS-terminating proxy stands in front of it, and Tansu advertises the
  proxy's address: clients that bootstrap through the proxy come back through it.
- Tansu's `--authentication` speaks SCRAM-SHA-512 but cannot have users: it only shows
  that credentials are refused.
- SecantusDB serves SCRAM-SHA-256 with `--auth`, once its users have been created by a
  run without `--auth` on the same storage. It could serve TLS itself (`--tls-cert-file`,
  `--tls-key-file`), but it does each handshake on its one accept thread with no timeout:
  a client that connects and stays silent (pymongo leaves such sockets when closed while
  reconnecting, after a refused certificate) stalls every later connection. So the same
  proxy serves its TLS.
"""

import asyncio
import contextlib
import datetime
import ipaddress
import secrets
import ssl
import threading
import urllib.parse
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pymongo import MongoClient

from services.dev_servers import (
    STARTUP_TIMEOUT_S,
    Servers,
    free_port,
    listening,
    secantus_argv,
    tansu_argv,
)

# --- Certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """PEM files; the keys are unencrypted."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that signed nothing here: trusting only it must fail every handshake."""


@dataclass(frozen=True)
class _Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(name: str, issuer: _Issued | None, *extensions: x509.ExtensionType) -> _Issued:
    """A certificate for `name`, signed by `issuer`: a self-signed CA when there is none."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signing_key = issuer.key if issuer else key
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        .add_extension(_key_usage(signs_certificates=issuer is None), True)
        # Python 3.13's default strict verification wants both key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), False
        )
    )
    for extension in extensions:
        builder = builder.add_extension(extension, False)
    return _Issued(key, builder.sign(signing_key, hashes.SHA256()))


def _write(folder: Path, name: str, issued: _Issued) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def make_certificates(folder: Path) -> Certificates:
    """A CA, a server and a client certificate it signed, and an unrelated CA, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _issue("leads test CA", None)
    server = _issue(
        "127.0.0.1",
        ca,
        x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
    )
    client = _issue(
        "leads test client", ca, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    )
    server_cert, server_key = _write(folder, "server", server)
    client_cert, client_key = _write(folder, "client", client)
    return Certificates(
        ca=_write(folder, "ca", ca)[0],
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
        other_ca=_write(folder, "other-ca", _issue("unrelated CA", None))[0],
    )


# --- TLS proxy ------------------------------------------------------------------------


class TlsProxy:
    """Terminates TLS on a loopback port and relays each connection, in plaintext, to
    `target_port`. It runs its own event loop in a thread, so it keeps serving while
    the test's loop is busy or blocked, and to clients in other processes."""

    def __init__(self, certs: Certificates, target_port: int, *, mutual: bool = False) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs.ca)
        self._context.load_cert_chain(certs.server_cert, certs.server_key)
        if mutual:
            self._context.verify_mode = ssl.CERT_REQUIRED
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tls-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[Any]] = set()
        self.port = 0

    def __enter__(self) -> "TlsProxy":
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening and drop every connection; again is harmless."""
        if self._thread.is_alive():
            self._call(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def _call(self, step: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(step, self._loop).result(STARTUP_TIMEOUT_S)

    async def _start(self) -> None:
        # Port 0: the system picks a free port, with no race against other processes.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # The relays, and handshakes still under way (asyncio's tasks: a client may connect
        # and stay silent); cancelled, these close their sockets.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _accept(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        # A task of its own (the loop holds tasks weakly): Python 3.11 logs an error when
        # the task asyncio makes of a coroutine callback ends cancelled.
        relay = self._loop.create_task(self._relay(client, to_client))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        writers, clean = [to_client], False
        try:
            target, to_target = await asyncio.open_connection("127.0.0.1", self._target_port)
            writers.append(to_target)
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_pipe(client, to_target))
                pipes.create_task(_pipe(target, to_client))
            clean = True
        except* OSError:
            pass  # the target refused, or a side broke: both are dropped below
        finally:
            for writer in writers:
                # Closing flushes what is buffered; aborting (on errors, on stop) does not wait.
                writer.close() if clean else writer.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of file, then pass the end on: a half-close where the sink's
    transport has one (plain TCP), a close where it has not (TLS)."""
    while data := await source.read(64 * 1024):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof():
        sink.write_eof()
    else:
        sink.close()


# --- Servers --------------------------------------------------------------------------


@dataclass(frozen=True)
class SecuredKafka:
    bootstrap_servers: str
    connection: dict[str, Any]
    """The `LEADS_*` settings, by field name, that reach it (see `Servers.connection`)."""
    pid: int


@contextlib.contextmanager
def tls_kafka(certs: Certificates, logs: Path, *, mutual: bool = False) -> Iterator[SecuredKafka]:
    """Tansu behind a TLS proxy; with `mutual`, the proxy wants a client certificate
    signed by the CA, and `connection` names the test client's."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(TlsProxy(certs, port, mutual=mutual))
        tansu = stack.enter_context(
            listening("tansu-tls", tansu_argv(port, advertised_port=proxy.port), port, logs)
        )
        # The proxy goes first: Tansu's stop waits seconds for connections still open.
        stack.callback(proxy.stop)
        connection: dict[str, Any] = {
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cafile": certs.ca,
        }
        if mutual:
            connection["kafka_ssl_certfile"] = certs.client_cert
            connection["kafka_ssl_keyfile"] = certs.client_key
        yield SecuredKafka(f"127.0.0.1:{proxy.port}", connection, tansu.process.pid)


@contextlib.contextmanager
def sasl_kafka(logs: Path) -> Iterator[SecuredKafka]:
    """Tansu requiring SCRAM-SHA-512 (in plaintext), which no credentials pass."""
    port = free_port()
    with listening("tansu-sasl", tansu_argv(port, "--authentication"), port, logs) as tansu:
        connection = {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
        }
        yield SecuredKafka(f"127.0.0.1:{port}", connection, tansu.process.pid)


@dataclass(frozen=True)
class SecuredMongo:
    port: int
    user: str
    password: str
    ca: Path

    def uri(self, *, password: str | None = None, ca: Path | None = None) -> str:
        """The URI that reaches it; another password or CA make it one that fails."""
        user = urllib.parse.quote(self.user, safe="")
        secret = urllib.parse.quote(password or self.password, safe="")
        options = urllib.parse.urlencode(
            {
                "directConnection": "true",
                "tls": "true",
                "tlsCAFile": str(ca or self.ca),
                "authSource": "admin",
            }
        )
        return f"mongodb://{user}:{secret}@127.0.0.1:{self.port}/?{options}"


@contextlib.contextmanager
def secured_mongodb(certs: Certificates, storage: Path, logs: Path) -> Iterator[SecuredMongo]:
    """SecantusDB requiring SCRAM, behind the TLS proxy, with a user who may do anything."""
    port = free_port()
    user, password = f"leads-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    # Users are made while authentication is off, on the storage the secured server opens.
    with (
        listening("secantus-setup", secantus_argv(port, str(storage)), port, logs),
        MongoClient[dict[str, Any]](f"mongodb://127.0.0.1:{port}/?directConnection=true") as setup,
    ):
        setup.admin.command("createUser", user, pwd=password, roles=["root"])
    with (
        listening("secantus", secantus_argv(port, str(storage), "--auth"), port, logs),
        TlsProxy(certs, port) as proxy,
    ):
        yield SecuredMongo(proxy.port, user, password, certs.ca)


def as_servers(kafka: SecuredKafka, mongodb: SecuredMongo) -> Servers:
    """Both, described the way the service's tests take servers."""
    return Servers(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        mongodb_uri=mongodb.uri(),
        kafka_idempotence=False,
        kafka_pid=kafka.pid,
        kafka_fetch_max_wait=timedelta(milliseconds=50),
        connection=dict(kafka.connection),
    )


@contextlib.contextmanager
def secured_servers(folder: Path, *, mutual: bool = False) -> Iterator[Servers]:
    """Kafka over TLS (mutual TLS with `mutual`) and MongoDB over TLS with SCRAM;
    certificates, storage and logs in `folder`."""
    certs = make_certificates(folder / "certs")
    with (
        tls_kafka(certs, folder, mutual=mutual) as kafka,
        secured_mongodb(certs, folder / "mongodb", folder) as mongodb,
    ):
        yield as_servers(kafka, mongodb)
