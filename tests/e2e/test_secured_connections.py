"""A secured cluster: `leads serve`, `leads scheduler` and an action over HTTP with
Kafka over TLS (the brokers' CA checked by every client) and MongoDB over TLS with
SCRAM, on certificates made here; and each way such a cluster refuses the service
ends it with one line naming the setting to look at, and a non-zero exit."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from contracts.topics import Topic
from services.dev_servers import Servers
from tests import messages
from tests.e2e.drivers import scheduler_running, service_running, upstream_of
from tests.e2e.test_actions_over_http import ACCEPT, done
from tests.e2e.test_startup_refusals import one_error, refusal
from tests.secured_servers import (
    Certificates,
    SecuredMongo,
    as_servers,
    sasl_kafka,
    tls_kafka,
)
from tests.servers import isolated_settings

PASSWORD = "wrong-but-secret-7f3a"


@pytest.fixture(scope="module")
def secured(
    certs: Certificates, secured_folder: Path, scram_mongodb: SecuredMongo
) -> Iterator[Servers]:
    with tls_kafka(certs, secured_folder) as kafka:
        yield as_servers(kafka, scram_mongodb)


async def test_the_service_and_the_scheduler_work_over_tls_and_scram(secured: Servers) -> None:
    settings = isolated_settings(secured, "tls").model_copy(
        update={"response_window": timedelta(seconds=3), "sweep_interval": timedelta(seconds=1)}
    )
    with service_running(settings) as service, scheduler_running(settings):
        async with upstream_of(service) as upstream:
            accepted, unanswered = messages.inbound(), messages.inbound()
            for lead in (accepted, unanswered):
                await upstream.send(Topic.INBOUND, lead)
            # A partner's action over HTTP, published by the service to Kafka over TLS.
            await upstream.until(lambda o: "lead.received" in o.event_types(accepted["lead_id"]))
            status = await done(upstream.api, accepted["lead_id"], ACCEPT)
            assert status["status"] == "applied", status
            # The scheduler's sweep over TLS and SCRAM: the other lead expires.
            outputs = await upstream.until(
                lambda o: "lead.expired" in o.event_types(unanswered["lead_id"]),
                timeout=60,
                what="the unanswered lead expired",
            )
    assert outputs.event_types(accepted["lead_id"]) == ["lead.received", "lead.accepted"]


@pytest.mark.parametrize("command", ["serve", "scheduler"])
def test_an_untrusted_kafka_certificate_is_one_line_naming_the_ca_setting(
    secured: Servers, certs: Certificates, command: str
) -> None:
    settings = isolated_settings(secured, "untrusted").model_copy(
        update={"kafka_ssl_cafile": certs.other_ca}
    )
    code, lines = refusal(settings, command)
    assert code != 0
    assert "not trusted" in one_error(lines, "LEADS_KAFKA_SSL_CAFILE")


def test_a_wrong_kafka_password_is_one_line_naming_the_credentials(
    secured_folder: Path, scram_mongodb: SecuredMongo
) -> None:
    with sasl_kafka(secured_folder) as kafka:
        login = {"kafka_sasl_username": "leads", "kafka_sasl_password": PASSWORD}
        servers = as_servers(
            replace(kafka, connection={**kafka.connection, **login}), scram_mongodb
        )
        code, lines = refusal(isolated_settings(servers, "sasl"))
    assert code != 0
    one_error(lines, "LEADS_KAFKA_SASL_USERNAME", "LEADS_KAFKA_SASL_PASSWORD")
    assert not [line for line in lines if PASSWORD in line]  # never shown


def test_a_wrong_mongodb_password_is_one_line_naming_the_uri(
    secured: Servers, scram_mongodb: SecuredMongo
) -> None:
    settings = isolated_settings(secured, "scram").model_copy(
        update={"mongodb_uri": scram_mongodb.uri(password=PASSWORD)}
    )
    code, lines = refusal(settings)
    assert code != 0
    assert "refused the credentials" in one_error(lines, "LEADS_MONGODB_URI")
    assert not [line for line in lines if PASSWORD in line]


def test_an_untrusted_mongodb_certificate_is_one_line_naming_the_uri(
    secured: Servers, scram_mongodb: SecuredMongo, certs: Certificates
) -> None:
    settings = isolated_settings(secured, "mongotls").model_copy(
        update={
            "mongodb_uri": scram_mongodb.uri(ca=certs.other_ca),
            "mongodb_timeout": timedelta(seconds=3),
        }
    )
    code, lines = refusal(settings)
    assert code != 0
    assert "not trusted" in one_error(lines, "tlsCAFile", "LEADS_MONGODB_URI")
