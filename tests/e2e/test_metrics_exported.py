"""End to end: running `leads serve` and `leads scheduler` export every metric the
alert rules and the Grafana dashboard in deploy/observability name."""

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.dev_servers import Servers, free_port
from tests.deploy.test_observability import EXPECTED_METRICS, metrics_named_by_deploy_files
from tests.e2e.drivers import scheduler_running, service_running
from tests.servers import isolated_settings

LISTEN_TIMEOUT_S = 10.0


def listening(base_url: str) -> bool:
    """Whether the process answers /healthz, polled until the deadline."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200
        except httpx.TransportError:
            time.sleep(0.1)  # not listening yet
    return False


def exported(base_url: str) -> set[str]:
    """The metric names a process's /metrics declares, as EXPECTED_METRICS spells
    them (counters with `_total`), whether or not they have samples yet; none
    when it does not answer /healthz."""
    if not listening(base_url):
        return set()
    answer = httpx.get(f"{base_url}/metrics", timeout=5.0)
    assert answer.status_code == 200, f"{base_url}/metrics: {answer.status_code}"
    return {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(answer.text)
    }


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(servers: Servers) -> None:
    scheduler_port = free_port()
    settings = isolated_settings(servers, "metrics").model_copy(
        update={"scheduler_http_port": scheduler_port}
    )
    urls = {
        "serve": f"http://127.0.0.1:{settings.http_port}",
        "scheduler": f"http://127.0.0.1:{scheduler_port}",
    }
    with service_running(settings), scheduler_running(settings):
        found = {exporter: exported(url) for exporter, url in urls.items()}
    needed = metrics_named_by_deploy_files()
    missing = {
        exporter: sorted(
            name
            for name in needed
            if EXPECTED_METRICS[name].exporter == exporter and name not in names
        )
        for exporter, names in found.items()
    }
    assert missing == {"serve": [], "scheduler": []}
