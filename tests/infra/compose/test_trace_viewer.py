"""Compose's trace viewer (issue #24): every service that runs the binary posts its spans over
OTLP/HTTP to a compose service that exists, listens on that port and starts first, and that
service, Jaeger, shows them on a loopback-only host port that docs/operations.md names.

The binary exports when OTEL_EXPORTER_OTLP_ENDPOINT is set (pipeline/src/trace.rs) and posts to
<endpoint>/v1/traces; the names and the port are compared with what Terraform gives the tasks on
AWS (terraform/modules/compute/ecs), so a trace reads the same in Jaeger and in X-Ray.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
COMPUTE = ROOT / "terraform" / "modules" / "compute" / "ecs"
OPERATIONS = ROOT / "docs" / "operations.md"
# Jaeger's own ports: the query service's UI, and the OTLP/HTTP receiver of its collector.
# https://www.jaegertracing.io/docs/latest/deployment/
JAEGER_UI_PORT = 16686
# "127.0.0.1:${NAME:-56686}:16686" or "127.0.0.1:56686:16686", the address optional.
PUBLISHED = re.compile(r"(?:(?P<ip>[\d.]+):)?(?:\$\{(?P<variable>\w+):-(?P<default>\d+)\}|(?P<fixed>\d+)):(?P<container>\d+)")


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves the file's anchors and `<<` merge keys the way compose does.
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolated(value: str) -> str:
    """A value as compose reads it with none of the developer's variables set: ${NAME:-default}
    is the default."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)


def binary_services(compose: dict) -> dict[str, dict]:
    """The services that run the image the Dockerfile builds: the binary, whatever its command."""
    return {
        name: service
        for name, service in compose["services"].items()
        if (service.get("build") or {}).get("dockerfile") == "Dockerfile"
    }


def container_ports(service: dict) -> set[int]:
    """The ports a service offers other services: `expose`, and the container side of `ports`."""
    exposed = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    published = {int(PUBLISHED.fullmatch(str(p))["container"]) for p in service.get("ports", [])}
    return exposed | published


def terraform_otlp_port() -> int:
    found = re.search(r"^\s*otlp_http_port\s*=\s*(\d+)", (COMPUTE / "metrics.tf").read_text(encoding="utf-8"), re.M)
    assert found, "modules/compute/ecs/metrics.tf no longer sets otlp_http_port"
    return int(found.group(1))


def terraform_service_name(role: str) -> str:
    """OTEL_SERVICE_NAME as modules/compute/ecs renders it for a role ("image-${role}")."""
    found = re.search(r'OTEL_SERVICE_NAME\s*=\s*"([^"]*)"', (COMPUTE / "main.tf").read_text(encoding="utf-8"))
    assert found, "modules/compute/ecs/main.tf no longer sets OTEL_SERVICE_NAME"
    return found.group(1).replace("${role}", role)


def test_the_binary_runs_in_the_services_these_tests_look_at(compose):
    """Guards the selection below: a rename of the build would otherwise leave nothing to check."""
    assert {"migrate", "api", "worker"} <= set(binary_services(compose))


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_each_binary_service_posts_its_spans_to_a_compose_service_that_receives_them(compose, name):
    service = binary_services(compose)[name]
    endpoint = urlsplit(service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http" and endpoint.path in ("", "/"), endpoint
    receiver = compose["services"].get(endpoint.hostname)
    assert receiver is not None, f"{name} sends its spans to {endpoint.hostname}, which is no compose service"
    assert endpoint.port in container_ports(receiver), f"{endpoint.hostname} does not expose {endpoint.port}"
    # OTLP/HTTP's port, the one the collector sidecar listens on in the tasks on AWS.
    assert endpoint.port == terraform_otlp_port()
    # Started before the service, so its first spans have somewhere to go.
    assert endpoint.hostname in service["depends_on"], f"{name} does not wait for {endpoint.hostname}"
    # Left to the developer (none turns traces off); unset, the endpoint alone turns them on.
    assert not interpolated(service["environment"].get("OTEL_TRACES_EXPORTER", "")), "the compose default exports"


def test_each_binary_service_names_itself_as_its_task_does_on_aws(compose):
    services = binary_services(compose)
    names = {name: service["environment"]["OTEL_SERVICE_NAME"] for name, service in services.items()}
    for name, service in services.items():
        # The role is the command, as it is the task's role on AWS.
        assert names[name] == terraform_service_name(service["command"][0]), name
    assert len(set(names.values())) == len(names), f"two services share a name: {names}"


def test_the_receiver_is_jaeger_v2_pinned_to_a_release(compose):
    (endpoint,) = {s["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] for s in binary_services(compose).values()}
    image = compose["services"][urlsplit(endpoint).hostname]["image"]
    # A release tag, like the other images here: no `latest`, no bare major.
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", image), image


def test_the_viewer_ui_is_published_on_loopback_only_and_the_docs_give_its_address(compose):
    jaeger = compose["services"]["jaeger"]
    published = [PUBLISHED.fullmatch(str(p)) for p in jaeger.get("ports", [])]
    assert all(published), jaeger["ports"]
    (ui,) = [p for p in published if int(p["container"]) == JAEGER_UI_PORT]
    assert ui["ip"] == "127.0.0.1", "nothing in the stack listens beyond the loopback"
    host_port = ui["default"] or ui["fixed"]
    # The receiver stays on the compose network: only the UI is the host's business.
    assert {int(p["container"]) for p in published} == {JAEGER_UI_PORT}
    docs = OPERATIONS.read_text(encoding="utf-8")
    assert f"http://localhost:{host_port}" in docs, f"docs/operations.md does not name the trace viewer's address (port {host_port})"
    if ui["variable"]:
        assert ui["variable"] in docs, f"docs/operations.md does not say {ui['variable']} moves the viewer"
