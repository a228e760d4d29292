"""The ECS task definitions as terraform/envs/production gives them, read by evaluating the
Terraform (tools/lib/harness/tfeval.py) with its example tfvars, and made runnable here.

A Task is what ECS would start: the command, the plain environment, the secrets to inject (name
-> valueFrom), the task role and the CPU architecture. `localise` then makes the only changes
the parity test allows, and says which ones it made:
- hosts, and ports Terraform leaves to AWS, come from the stand-ins (localhost and the test's
  own servers), so they need no change here. The ports Terraform sets itself do: REDIS_URL's
  (6379, which the machine's shared Redis holds) moves to the test's TLS Redis, and
  LISTEN_ADDR and METRICS_ADDR move from 0.0.0.0 to free local ports;
- the emulator's endpoint (AWS_ENDPOINT_URL) is added, with the role's keys;
- the CA files: DATABASE_URL's sslrootcert (the RDS bundle in the image) and REDIS_CA_FILE
  (unset on AWS, where ElastiCache's certificate chains to a public root) name the test's CA.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from harness import tfeval  # noqa: E402

PRODUCTION = ROOT / "terraform" / "envs" / "production"
COMPUTE = "module.stack.module.compute"


@dataclass
class Task:
    family: str
    command: list[str]
    environment: dict[str, str]
    secrets: dict[str, str]
    role: str | None
    architecture: str
    changes: list[str] = field(default_factory=list)


def production(stand_ins: dict[str, object]) -> tfeval.Module:
    """terraform/envs/production with its example tfvars."""
    return tfeval.load(PRODUCTION, tfeval.tfvars(PRODUCTION / "terraform.tfvars.example"), stand_ins)


def evaluate(stand_ins: dict[str, object]) -> tuple[dict[str, Task], dict[str, str], str]:
    """The production root's api/worker/migrate/replay tasks, the task-role policies by role
    and the execution role's policy, all as Terraform would render them with these stand-ins."""
    root = production(stand_ins)
    stack = root.module("stack")
    compute = stack.module("compute")
    roles = {v: k for k, v in stand_ins.items() if isinstance(v, str) and v.startswith("arn:aws:iam::")}
    definitions = {
        "api": compute.resource("aws_ecs_task_definition", "api"),
        "worker": compute.resource("aws_ecs_task_definition", "worker"),
    }
    definitions.update(compute.resource("aws_ecs_task_definition", "ops"))
    tasks: dict[str, Task] = {}
    for name, definition in definitions.items():
        containers = json.loads(tfeval.known(definition.attr("container_definitions"), f"{definition.ref}.container_definitions"))
        # The service's own container is the one essential container; sidecars (the metrics
        # collector) may come and go without taking the task down.
        essential = [c for c in containers if c.get("essential", True)]
        assert len(essential) == 1, f"{definition.ref} has {len(essential)} essential containers"
        container = essential[0]
        role_arn = tfeval.known(definition.attr("task_role_arn"), f"{definition.ref}.task_role_arn")
        role = None
        if role_arn is not None:
            match = re.search(r'aws_iam_role\.task\["(\w+)"\]', roles.get(role_arn, ""))
            assert match, f"{definition.ref}: task role {role_arn} is not one of the iam module's task roles"
            role = match.group(1)
        platform = definition.attr("runtime_platform")[0]
        tasks[name] = Task(
            family=tfeval.known(definition.attr("family"), f"{definition.ref}.family"),
            command=container.get("command", []),
            environment={e["name"]: e["value"] for e in container.get("environment", [])},
            secrets={s["name"]: s["valueFrom"] for s in container.get("secrets", [])},
            role=role,
            architecture=tfeval.known(platform.attr("cpu_architecture"), f"{definition.ref}.cpu_architecture"),
        )
    iam = stack.module("iam")
    policies = {role: tfeval.known(doc, f"task role {role}") for role, doc in iam.local("task_roles").items()}
    execution = tfeval.known(iam.local("execution_policy"), "execution policy")
    return tasks, policies, execution


def localise(task: Task, *, ca_file: Path, endpoint: str, credentials: dict[str, str], listen: str, metrics: str,
             redis_port: int) -> dict[str, str]:
    """The task's environment with the parity test's allowed changes, recorded in task.changes."""
    env = dict(task.environment)
    changes = task.changes
    changes.clear()
    url = env.get("DATABASE_URL")
    if url:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        assert query.get("sslmode") == "verify-full", f"{task.family}: DATABASE_URL does not verify the server: {url}"
        if "sslrootcert" in query:
            query["sslrootcert"] = str(ca_file)
            changes.append("DATABASE_URL sslrootcert -> the test CA")
        env["DATABASE_URL"] = urlunsplit(parts._replace(query=urlencode(query)))
    if env.get("REDIS_URL", "").startswith("rediss://"):
        parts = urlsplit(env["REDIS_URL"])
        if parts.port != redis_port:
            changes.append(f"REDIS_URL port {parts.port} -> {redis_port}")
            env["REDIS_URL"] = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{redis_port}"))
        env["REDIS_CA_FILE"] = str(ca_file)
        changes.append("REDIS_CA_FILE added: the test CA")
    for name, address in (("LISTEN_ADDR", listen), ("METRICS_ADDR", metrics)):
        if name in env:
            changes.append(f"{name} {env[name]} -> {address}")
            env[name] = address
    env["AWS_ENDPOINT_URL"] = endpoint
    env.update(credentials)
    changes.append("AWS_ENDPOINT_URL and the role's keys added")
    return env
