"""What docker-compose.yml must provide beyond being valid (scripts/check-infra validates it
against the Compose Specification and docker-compose 1.29): the local Redis read-through cache
for the api and the worker, started healthy before either.

The api reads through the cache; the worker invalidates entries when a job changes state, so both
need REDIS_URL, and both wait for Redis to answer PING.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
CACHE_ENGINE = ROOT / "terraform" / "modules" / "data" / "variables.tf"


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves the file's anchors and `<<` merge keys the way compose does.
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_redis_image_is_pinned_to_a_minor_release_of_the_aws_major(compose):
    image = compose["services"]["redis"]["image"]
    match = re.fullmatch(r"redis:(\d+)\.(\d+)(?:\.\d+)?-[a-z0-9.]+", image)
    assert match, f"{image}: pin a minor release and a base (redis:7.4-alpine, redis:7.4-bookworm)"
    # Same major as ElastiCache (terraform/modules/data cache_engine_version), so local
    # behaviour matches AWS.
    aws = re.search(r'variable "cache_engine_version" \{.*?default\s*=\s*"(\d+)\.', CACHE_ENGINE.read_text(), re.S)
    assert aws and match.group(1) == aws.group(1), f"local redis {image} vs ElastiCache {aws and aws.group(1)}"


def test_redis_healthcheck_pings(compose):
    check = compose["services"]["redis"]["healthcheck"]
    test = check["test"]
    command = " ".join(test[1:]) if isinstance(test, list) else test
    assert re.search(r"\bredis-cli\b.*\bping\b", command), test
    assert check.get("retries", 0) >= 1


@pytest.mark.parametrize("role", ["api", "worker"])
def test_api_and_worker_use_redis_and_wait_until_it_is_healthy(compose, role):
    service = compose["services"][role]
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379"
    assert service["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_redis_is_reachable_from_the_host_only_on_loopback(compose):
    for port in compose["services"]["redis"].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port
