"""Compose's Prometheus and Grafana (issue #24): Prometheus scrapes the api and every worker on
the ports the services listen on and loads the SLO rules; Grafana's provisioning parses, points
at that Prometheus and loads the dashboard; the dashboard and the rules name only metrics that
docs/operations.md lists (or the rules record); every alert has its four promtool cases."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"
OPERATIONS = ROOT / "docs" / "operations.md"
CASES = ("fires", "below", "short-burst", "recovered")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to the repository) of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        found[container] = host.removeprefix("./")
    return found


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def docs_metric_names() -> set[str]:
    rows = re.findall(r"^\| (`image_[^|]+)\|", OPERATIONS.read_text(encoding="utf-8"), re.M)
    return {name for row in rows for name in re.findall(r"`(image_\w+)", row)}


def rules() -> list[dict]:
    return [r for g in yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))["groups"] for r in g["rules"]]


def names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads, histogram suffixes stripped."""
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in re.findall(r"\b(image_\w+|slo:[\w:]+)", expr)}


def test_prometheus_scrapes_the_api_and_every_worker_on_their_ports(compose):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_port = port_of(compose["services"]["api"]["environment"]["LISTEN_ADDR"])
    worker_port = port_of(compose["services"]["worker"]["environment"]["METRICS_ADDR"])
    assert jobs["api"]["static_configs"] == [{"targets": [f"api:{api_port}"]}]
    # DNS discovery of the service name: one target per `--scale worker=N` replica.
    (dns,) = jobs["worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["type"] == "A" and dns["port"] == worker_port
    assert str(worker_port) in [str(p) for p in compose["services"]["worker"]["expose"]]


def test_prometheus_loads_the_rules_file_it_is_given(compose):
    service = compose["services"]["prometheus"]
    mounted = mounts(service)
    config_path = next(a.split("=", 1)[1] for a in service["command"] if a.startswith("--config.file="))
    assert mounted[config_path] == "docker/prometheus/prometheus.yml"
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"], "no rules loaded"
    for path in config["rule_files"]:
        assert mounted[path] == "docker/prometheus/rules.yml", path


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboard(compose):
    service = compose["services"]["grafana"]
    mounted = mounts(service)
    assert mounted["/etc/grafana/provisioning"] == "docker/grafana/provisioning"
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["type"] == "prometheus" and source["url"] == f"http://prometheus:{prometheus_port}"
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/image-service.yml").read_text())["providers"]
    dashboards = ROOT / mounted[provider["options"]["path"]]
    assert sorted(p.name for p in dashboards.glob("*.json")) == ["image-service.json"]
    dashboard = json.loads((dashboards / "image-service.json").read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for():
    dashboard = json.loads((GRAFANA / "dashboards/image-service.json").read_text(encoding="utf-8"))
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for needed in (
        "image_worker_jobs_total",  # throughput, failures by code
        "by (outcome, code)",
        'image_worker_queue_messages{queue=~"live|bulk"}',  # backlog
        "image_worker_queue_lag_seconds_bucket",  # its age
        'queue=~"live_dlq|bulk_dlq"',  # DLQ depth
        "by (stage, le)",  # stage latencies
        'image_api_cache_lookups_total{result="hit"}',
        'image_worker_webhook_deliveries_total{result=~"retried|expired"}',
        "slo:job_events_errors:ratio_rate1h",
        "slo:api_errors:ratio_rate1h",
    ):
        assert needed in exprs, needed


def test_dashboard_and_rules_read_only_documented_or_recorded_metrics():
    recorded = {r["record"] for r in rules() if "record" in r}
    known = docs_metric_names() | recorded
    dashboard = json.loads((GRAFANA / "dashboards/image-service.json").read_text(encoding="utf-8"))
    used = {n for p in dashboard["panels"] for t in p["targets"] for n in names_in(t["expr"])}
    used |= {n for r in rules() for n in names_in(r["expr"])}
    assert used and used <= known, used - known


def test_every_alert_has_its_four_promtool_cases():
    alerts = [r["alert"] for r in rules() if "alert" in r]
    tested: dict[str, set[str]] = {}
    for path in PROMETHEUS.glob("rules*.test.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["rule_files"] == ["rules.yml"], path
        for test in doc["tests"]:
            (check,) = test["alert_rule_test"]
            case = test["name"].split(":")[0].split(" ", 1)[1]
            tested.setdefault(check["alertname"], set()).add(case)
            assert bool(check["exp_alerts"]) == (case == "fires"), test["name"]
    assert tested == {alert: set(CASES) for alert in alerts}


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_observability_images_are_pinned_to_a_release_and_on_loopback(compose, service):
    image = compose["services"][service]["image"]
    assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), image
    for port in compose["services"][service]["ports"]:
        assert str(port).startswith("127.0.0.1:"), port
