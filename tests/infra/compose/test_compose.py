"""What docker-compose.yml must provide beyond being valid (scripts/check-infra validates it
against the Compose Specification and docker-compose 1.29): the local Redis read-through cache
for the api and the worker, started healthy before either, and both queue lanes as the one-shot
`init` (docker/init-aws.py) creates them.

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
INIT = ROOT / "docker" / "init-aws.py"
# Each queue setting of the services, and the variable init-aws.py reads its queue's name from.
QUEUE_SETTINGS = {
    "SQS_QUEUE_URL": "JOB_QUEUE_NAME",
    "SQS_DLQ_URL": "DLQ_NAME",
    "SQS_BULK_QUEUE_URL": "BULK_QUEUE_NAME",
    "SQS_BULK_DLQ_URL": "BULK_DLQ_NAME",
}


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


def init_default(variable: str) -> str:
    """The name init-aws.py gives a resource when the compose file does not set `variable`."""
    found = re.search(rf'os\.environ\.get\("{variable}", "([^"]+)"\)', INIT.read_text(encoding="utf-8"))
    assert found, f"docker/init-aws.py does not read {variable}"
    return found.group(1)


@pytest.mark.parametrize("role", ["migrate", "api", "worker"])
def test_services_get_both_queue_lanes_that_init_creates(compose, role):
    """The live queue and the bulk lane (replays, reprocessing), each with its dead-letter queue,
    named as init makes them: a URL naming a queue init never made fails only at the first send."""
    env = compose["services"][role]["environment"]
    init_env = compose["services"]["init"]["environment"]
    for setting, name_variable in QUEUE_SETTINGS.items():
        assert name_variable not in init_env, f"init sets {name_variable}: compare with that value instead"
        assert env[setting].startswith("http://moto:5000/123456789012/"), (setting, env[setting])
        assert env[setting].rsplit("/", 1)[-1] == init_default(name_variable), (role, setting, env[setting])
