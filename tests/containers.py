"""Apache Kafka 4.1 and a MongoDB 8 replica set in Docker containers (testcontainers),
for `LEADS_TEST_SERVERS=containers` and `containers-sasl-ssl` (see tests/conftest.py).

- Kafka is `deploy/compose`'s broker: its image and environment are read from
  compose.yaml, only the listeners differ. One KRaft node, broker and controller.
  Clients reach it on a host port Docker picks, which is known only once the
  container runs: the container waits for a start script that advertises it.
- With SASL_SSL its client listener wants TLS (a certificate the test makes for
  localhost and 127.0.0.1, in a PKCS12 keystore) and a SCRAM-SHA-512 login. The image
  formats its storage itself, without `--add-scram`, so the user is added once the
  broker runs, through the plaintext listener brokers use between themselves.
- MongoDB is `mongodb/mongodb-atlas-local`, a one-node replica set (transactions
  work), with the root user testcontainers names in its URL.
"""

import contextlib
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from testcontainers.community.mongodb import MongoDBAtlasLocalContainer
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import ExecWaitStrategy, LogMessageWaitStrategy

from services.dev_servers import STARTUP_TIMEOUT_S, ServerFailed, Servers, free_port
from tests.secured_servers import Certificates, make_certificates

KafkaSecurity = Literal["PLAINTEXT", "SASL_SSL"]
"""How clients reach the Kafka container: the protocol of its client listener."""

COMPOSE = Path(__file__).parents[1] / "deploy" / "compose" / "compose.yaml"
MONGODB_IMAGE = "mongodb/mongodb-atlas-local:8.0"
MONGODB_PORT = 27017

CLIENT_PORT = 9092
"""The client listener, named after its protocol: the image's scripts set TLS up only
when KAFKA_ADVERTISED_LISTENERS contains `SSL://`, and want KAFKA_OPTS (the JAAS file)
when it names a `SASL_` listener."""
BROKER_PORT = 19092
"""The plaintext listener brokers use between themselves; in-container tools use it too."""
CONTROLLER_PORT = 9093
SECRETS = "/etc/kafka/secrets"
"""Where the image's scripts look for the files KAFKA_SSL_*_FILENAME/CREDENTIALS name."""
START_SCRIPT = "/tmp/leads-kafka-start.sh"
GO = "/tmp/leads-kafka-go"
"""Written after the script, once the script is whole: the container starts on it."""
STARTED = r"Kafka Server started"
"""What the broker logs once it serves (Kafka's system tests wait for this line too)."""
CERTIFICATE_NAMES = ("localhost", "127.0.0.1")
"""The names `make_certificates` gives the server certificate."""


def compose_kafka() -> tuple[str, dict[str, str]]:
    """The image and environment of deploy/compose's Kafka, without the advertised
    listeners, which name the compose network."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]
    environment = {name: str(value) for name, value in service["environment"].items()}
    environment.pop("KAFKA_ADVERTISED_LISTENERS", None)
    if interpolated := [name for name, value in environment.items() if "${" in value]:
        # Compose would substitute these from the shell; read as text they would be wrong.
        raise ServerFailed(f"{COMPOSE}: tests/containers.py cannot read {interpolated}")
    return service["image"], environment


def listeners(client: KafkaSecurity, node_id: str) -> dict[str, str]:
    """Compose's listeners name its network (`kafka:9093`); here the node talks to
    itself on localhost, and only the client listener leaves the container."""
    return {
        "KAFKA_LISTENERS": (
            f"{client}://:{CLIENT_PORT},BROKER://:{BROKER_PORT},CONTROLLER://:{CONTROLLER_PORT}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            f"{client}:{client},BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"{node_id}@localhost:{CONTROLLER_PORT}",
    }


@dataclass(frozen=True)
class SaslSsl:
    """A SASL_SSL client listener: SCRAM-SHA-512 over TLS, with a server certificate
    signed by a CA that the test makes and the clients trust."""

    certificates: Certificates
    username: str = "leads"
    # Hex only: the password goes into `kafka-configs --add-config` and a JAAS file.
    password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    store_password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    def environment(self) -> dict[str, str]:
        """The image's documented TLS variables (file names under SECRETS) and JAAS file."""
        return {
            "KAFKA_SASL_ENABLED_MECHANISMS": "SCRAM-SHA-512",
            "KAFKA_OPTS": f"-Djava.security.auth.login.config={SECRETS}/kafka_server_jaas.conf",
            "KAFKA_SSL_KEYSTORE_TYPE": "PKCS12",
            "KAFKA_SSL_KEYSTORE_FILENAME": "kafka.keystore.p12",
            "KAFKA_SSL_KEYSTORE_CREDENTIALS": "kafka_keystore_creds",
            "KAFKA_SSL_KEY_CREDENTIALS": "kafka_ssl_key_creds",
        }

    def files(self) -> dict[str, bytes]:
        """The files those variables name, by name."""
        store_password = self.store_password.encode()
        return {
            "kafka.keystore.p12": self.keystore(),
            "kafka_keystore_creds": store_password,
            # PKCS12 protects the key with the store's password.
            "kafka_ssl_key_creds": store_password,
            "kafka_server_jaas.conf": self.jaas().encode(),
        }

    def keystore(self) -> bytes:
        """The server's key and certificate chain, as PKCS12."""
        certs = self.certificates
        key = serialization.load_pem_private_key(certs.server_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
        # PBES2 with AES-256 and an HMAC-SHA256 MAC: Java reads these since JDK 12.
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(50_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(self.store_password.encode())
        )
        return pkcs12.serialize_key_and_certificates(
            b"kafka",
            key,
            x509.load_pem_x509_certificate(certs.server_cert.read_bytes()),
            [x509.load_pem_x509_certificate(certs.ca.read_bytes())],
            encryption,
        )

    def jaas(self) -> str:
        """The broker's login context for SCRAM. Its credentials would only serve
        broker-to-broker SCRAM, which does not happen here (BROKER is plaintext)."""
        return (
            "KafkaServer {\n"
            "  org.apache.kafka.common.security.scram.ScramLoginModule required\n"
            f'  username="{self.username}"\n'
            f'  password="{self.password}";\n'
            "};\n"
        )

    def connection(self) -> dict[str, Any]:
        """The `LEADS_*` settings, by field name, that reach the listener."""
        return {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": self.username,
            "kafka_sasl_password": self.password,
            "kafka_ssl_cafile": self.certificates.ca,
        }


class ApacheKafka(DockerContainer):
    """deploy/compose's Kafka, its client listener advertised at the host port Docker
    maps (as testcontainers' KafkaContainer does): the container waits for a script
    that exports KAFKA_ADVERTISED_LISTENERS, then runs the image's own start-up."""

    def __init__(self, sasl_ssl: SaslSsl | None = None) -> None:
        image, environment = compose_kafka()
        super().__init__(image)
        self.sasl_ssl = sasl_ssl
        self.listener: KafkaSecurity = "SASL_SSL" if sasl_ssl else "PLAINTEXT"
        self.with_envs(**{**environment, **listeners(self.listener, environment["KAFKA_NODE_ID"])})
        if sasl_ssl is not None:
            self.with_envs(**sasl_ssl.environment())
        self.with_exposed_ports(CLIENT_PORT)
        self.with_command(
            ["sh", "-c", f"while [ ! -f {GO} ]; do sleep 0.1; done; exec bash {START_SCRIPT}"]
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(CLIENT_PORT)}"

    @property
    def connection(self) -> dict[str, Any]:
        """The `LEADS_*` settings beyond the bootstrap servers that reach it."""
        return self.sasl_ssl.connection() if self.sasl_ssl is not None else {}

    def start(self) -> Self:
        # No wait strategy is set, so this returns once the container runs: the broker
        # itself starts only after `_hand_over`.
        super().start()
        self._hand_over()
        try:
            LogMessageWaitStrategy(STARTED).wait_until_ready(self)
        except (RuntimeError, TimeoutError) as error:
            raise ServerFailed(f"Kafka did not start: {error}\n{self.tail()}") from error
        if self.sasl_ssl is not None:
            self._add_scram_user(self.sasl_ssl)
        return self

    def tail(self, lines: int = 40) -> str:
        """The container's last log lines, for a start-up that failed."""
        logs: bytes = self.get_wrapped_container().logs(tail=lines)
        return logs.decode(errors="replace")

    def _hand_over(self) -> None:
        host = self.get_container_host_ip()
        if self.sasl_ssl is not None:
            if host not in CERTIFICATE_NAMES:
                raise ServerFailed(
                    f"Docker's ports are reached at {host}, which the SASL_SSL listener's "
                    f"certificate does not name (only {', '.join(CERTIFICATE_NAMES)})"
                )
            for name, content in self.sasl_ssl.files().items():
                self.copy_into_container(content, f"{SECRETS}/{name}")
        advertised = f"{self.listener}://{self.bootstrap_servers},BROKER://localhost:{BROKER_PORT}"
        script = f"export KAFKA_ADVERTISED_LISTENERS={advertised}\nexec /etc/kafka/docker/run\n"
        self.copy_into_container(script.encode(), START_SCRIPT, 0o755)
        self.copy_into_container(b"", GO)

    def _add_scram_user(self, sasl_ssl: SaslSsl) -> None:
        """Add the SCRAM user, then wait until the broker knows it (the controller
        commits it first, the broker applies it from the metadata log)."""
        tool = [
            "/opt/kafka/bin/kafka-configs.sh",
            "--bootstrap-server",
            f"localhost:{BROKER_PORT}",
            "--entity-type",
            "users",
            "--entity-name",
            sasl_ssl.username,
        ]
        scram = f"SCRAM-SHA-512=[password={sasl_ssl.password}]"
        added = self.exec([*tool, "--alter", "--add-config", scram])
        if added.exit_code != 0:
            output = added.output.decode(errors="replace")
            raise ServerFailed(f"kafka-configs could not add the SCRAM user:\n{output}")
        described = " ".join([*tool, "--describe"])
        ExecWaitStrategy(["sh", "-c", f"{described} | grep -q SCRAM-SHA-512"]).wait_until_ready(
            self
        )


@contextlib.contextmanager
def kafka_container(security: KafkaSecurity = "PLAINTEXT") -> Iterator[ApacheKafka]:
    """A Kafka container for as long as the context lasts (and its certificates)."""
    with tempfile.TemporaryDirectory(prefix="leads-kafka-") as folder:
        sasl_ssl = SaslSsl(make_certificates(Path(folder))) if security == "SASL_SSL" else None
        with ApacheKafka(sasl_ssl) as kafka:
            yield kafka


def mongodb_container() -> MongoDBAtlasLocalContainer:
    """Atlas Local; the class waits for the image's health check. Its host port is
    pinned: stopped and started again, it keeps the address the service holds."""
    return MongoDBAtlasLocalContainer(MONGODB_IMAGE).with_bind_ports(MONGODB_PORT, free_port())


def until_primary(uri: str) -> None:
    """Wait until the node is a writable primary again (a replica set member elects
    itself after a start; transactions need the primary)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=1000) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(PyMongoError):
                if client.admin.command("hello").get("isWritablePrimary"):
                    return
            time.sleep(0.2)
    raise ServerFailed(f"MongoDB was no writable primary within {STARTUP_TIMEOUT_S:.0f} s")


class FrozenContainer:
    """A container a test can freeze and thaw: `docker pause`, the cgroup freezer,
    which is what SIGSTOP is to the embedded servers."""

    def __init__(self, container: DockerContainer) -> None:
        self.container = container

    def pause(self) -> None:
        self.container.get_wrapped_container().pause()

    def resume(self) -> None:
        self.container.get_wrapped_container().unpause()


class RestartableContainer(FrozenContainer):
    """One that can also be stopped and started again: the same container, so its
    data and its (pinned) host port stay; `ready` waits until it serves again."""

    def __init__(self, container: DockerContainer, ready: Callable[[], None]) -> None:
        super().__init__(container)
        self._ready = ready

    def stop(self) -> None:
        # SIGTERM, then SIGKILL after 15 s, as `stop_process` does to the embedded ones.
        self.container.get_wrapped_container().stop(timeout=15)

    def restart(self) -> None:
        self.container.get_wrapped_container().start()
        self._ready()


@dataclass(frozen=True)
class ContainerCluster:
    servers: Servers
    kafka: FrozenContainer
    mongodb: RestartableContainer


@contextlib.contextmanager
def container_cluster(security: KafkaSecurity = "PLAINTEXT") -> Iterator[ContainerCluster]:
    """Kafka and MongoDB containers for as long as the context lasts."""
    with kafka_container(security) as kafka, mongodb_container() as mongodb:
        uri = mongodb.get_connection_url()  # it carries ?directConnection=true
        until_primary(uri)  # healthy may come before the election: transactions need it
        yield ContainerCluster(
            servers=Servers(
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                mongodb_uri=uri,
                kafka_idempotence=True,
                connection=kafka.connection,
            ),
            kafka=FrozenContainer(kafka),
            mongodb=RestartableContainer(mongodb, lambda: until_primary(uri)),
        )
