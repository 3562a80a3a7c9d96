"""End to end: a real `leads serve` process, driven only through Kafka topics (the
drivers: drivers.py)."""

from collections.abc import AsyncIterator, Iterator

import pytest

from services.dev_servers import Servers
from tests.e2e.drivers import ServiceProcess, Upstream, service_running, upstream_of
from tests.servers import isolated_settings


@pytest.fixture(scope="module")
def running_service(servers: Servers) -> Iterator[ServiceProcess]:
    """One service per module; tests keep apart by using leads of their own."""
    with service_running(isolated_settings(servers, "e2e")) as service:
        yield service


@pytest.fixture
async def upstream(running_service: ServiceProcess) -> AsyncIterator[Upstream]:
    async with upstream_of(running_service) as client:
        yield client
