"""deploy/observability: the alert rules and the Grafana dashboard parse, and name only
metrics the service and the scheduler export (listed once, here)."""

import json
import re
from dataclasses import dataclass
from typing import Any

import promql_parser
import yaml

from tests.deploy.leads_settings import DEPLOY

ALERTS = DEPLOY / "observability" / "alerts.yaml"
DASHBOARD = DEPLOY / "observability" / "grafana" / "dashboards" / "leads.json"


@dataclass(frozen=True)
class Metric:
    kind: str  # counter, gauge or histogram
    labels: frozenset[str]
    exporter: str  # the process whose /metrics has it: serve or scheduler


def _metric(kind: str, *labels: str, exporter: str = "serve") -> Metric:
    return Metric(kind, frozenset(labels), exporter)


# Every metric the deployment files may name, as the processes export it (counters
# with `_total`, histograms by their base name). tests/e2e/test_metrics_exported.py
# checks a running `leads serve` and `leads scheduler` export these.
EXPECTED_METRICS = {
    "leads_messages_handled_total": _metric("counter", "topic", "outcome"),
    "leads_messages_refused_total": _metric("counter", "reason"),
    "leads_message_handling_seconds": _metric("histogram", "topic"),
    "leads_outbox_backlog": _metric("gauge"),
    "leads_consumer_lag": _metric("gauge", "topic"),
    "leads_outbox_oldest_unsent_seconds": _metric("gauge"),
    "leads_dead_letters_total": _metric("counter", "error_class"),
    "leads_retries_total": _metric("counter", "kind"),
    "leads_actions_held": _metric("gauge"),
    "leads_consumer_undecodable_batches_total": _metric("counter", "topic", "partition"),
    "leads_dependency_up": _metric("gauge", "dependency"),
    "leads_outbox_set_aside_rows": _metric("gauge"),
    "leads_kafka_producers_renewed_total": _metric("counter"),
    "leads_build_info": _metric("gauge", "version"),
    "leads_scheduler_sweep_duration_seconds": _metric("histogram", exporter="scheduler"),
    "leads_scheduler_due_backlog": _metric("gauge", exporter="scheduler"),
    "leads_scheduler_commands_emitted_total": _metric("counter", "command", exporter="scheduler"),
    "leads_scheduler_lease_held": _metric("gauge", exporter="scheduler"),
}
TARGET_LABELS = {"instance", "job"}
"""Labels Prometheus adds to every scraped series."""

# What the alerts must watch: the figures the issue names.
ALERTED = {
    "leads_consumer_lag",  # consumer lag growing
    "leads_outbox_oldest_unsent_seconds",  # outbox oldest unsent age
    "leads_dead_letters_total",  # dead letters
    "leads_scheduler_due_backlog",  # due backlog not shrinking
    "leads_dependency_up",  # readiness failing
    "leads_scheduler_lease_held",  # no scheduler lease holder
}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [panel for panel in panels if panel["type"] != "row"]


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each metric `expr` selects, with the labels it matches on. Raises
    ValueError when `expr` is not valid PromQL."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"select metrics by name: {expr}"
            found.append((node.name, {m.name for m in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def exported_name(series: str) -> str:
    """The metric a series name belongs to: a histogram's `_bucket`, `_sum` and
    `_count` series are its own."""
    base = re.sub(r"_(bucket|sum|count)$", "", series)
    if EXPECTED_METRICS.get(base, Metric("", frozenset(), "")).kind == "histogram":
        return base
    return series


def metrics_named(queries: list[str]) -> set[str]:
    return {exported_name(name) for query in queries for name, _ in selectors(query)}


def metrics_named_by_deploy_files() -> set[str]:
    """What the alerts and the dashboard need the processes to export."""
    return metrics_named([rule["expr"] for rule in alert_rules()] + dashboard_queries())


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])


def test_queries_select_only_exported_metrics_and_their_labels() -> None:
    queries = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
    for query in queries:
        for series, labels in selectors(query):
            metric = EXPECTED_METRICS.get(exported_name(series))
            assert metric is not None, f"{series} is not exported: {query}"
            histogram_labels = {"le"} if series.endswith("_bucket") else set()
            assert labels <= metric.labels | TARGET_LABELS | histogram_labels, query


def test_the_alerts_watch_every_figure_the_issue_names() -> None:
    assert metrics_named([rule["expr"] for rule in alert_rules()]) >= ALERTED


def test_the_dashboard_shows_every_exported_metric() -> None:
    shown = metrics_named(dashboard_queries())
    assert shown == set(EXPECTED_METRICS)


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard_panels():
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
