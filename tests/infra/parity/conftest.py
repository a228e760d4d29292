"""Fixtures of the parity test: the stand-ins for what AWS would create, the task definitions
Terraform renders for them, and the real binary run under each definition.

Order matters, as in tests/infra/iam: everything is created while moto accepts any key; then
IAM enforcement goes on, and from then on each process holds only its role's keys:
- the ECS agent's part (reading each task's secrets) uses the execution role's policy;
- api, worker and replay use their task roles' policies; migrate gets no AWS keys at all, as
  its task definition has no task role.
Every policy is the one Terraform renders (modules/iam), read through the evaluator.
"""

from __future__ import annotations

import json
import os
import platform
import secrets as random_secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))
sys.path.insert(0, str(HERE))

from harness import aws, procs  # noqa: E402
from harness.ports import free_port  # noqa: E402

import servers  # noqa: E402
import tasks as taskdefs  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
EMULATOR = ROOT / "tests" / "infra" / "iam" / "emulator.py"
# The container's user (Dockerfile: USER 65532), when the test can switch to it.
CONTAINER_UID = 65532

S = "module.stack.module"
NAMES = aws.Names(
    bucket="image-service-production-media",
    queue="image-service-production-jobs",
    dlq="image-service-production-jobs-dlq",
    topic="image-service-production-events",
    tap="parity-events-tap",
    chat_topic="image-service-production-chat",
    chat_tap="parity-chat-tap",
)




@dataclass
class World:
    endpoint: str
    made: aws.Resources
    certs: servers.Certs
    postgres: servers.Postgres
    redis: servers.Redis
    tasks: dict[str, taskdefs.Task]
    policies: dict[str, str]
    keys: dict[str, tuple[str, str]]
    secret_values: dict[str, str]
    work: Path
    exe: Path
    as_container_user: list[str]

    def client(self, service: str, who: str = "admin"):
        return aws.client(service, self.endpoint, REGION, self.keys[who], max_attempts=1)


def _install_binary(work: Path) -> tuple[Path, list[str]]:
    """A copy of the binary the container user can run, and the prefix that runs it as that user.
    Its directory is the working directory: like the container's read-only root, not writable."""
    exe = procs.service_binary()
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: build it first (scripts/test builds it), or set IMAGE_SERVICE_BIN")
    home = work / "bin"
    home.mkdir()
    copy = home / "image-service"
    shutil.copy(exe, copy)
    copy.chmod(0o755)
    home.chmod(0o755)
    work.chmod(0o755)
    if os.geteuid() == 0:
        return copy, ["setpriv", f"--reuid={CONTAINER_UID}", f"--regid={CONTAINER_UID}", "--clear-groups", "--"]
    return copy, []


def _users(iam, documents: dict[str, str]) -> dict[str, tuple[str, str]]:
    keys = {}
    for user, document in documents.items():
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=f"{user}-terraform", PolicyDocument=document)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    return keys


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    if not shutil.which("redis-server") or not shutil.which("psql"):
        pytest.fail("the parity test needs redis-server and the Postgres server and client (scripts/test installs them)")
    work = Path(tempfile.mkdtemp(prefix="parity-"))
    certs = servers.make_certs(work)
    log = work / "moto.log"
    closers = []
    try:
        moto = procs.Moto([sys.executable, str(EMULATOR)], log, timeout=30)
        closers.append(moto.close)
        setup = ("testing", "testing")
        made = aws.provision(moto.url, NAMES, region=REGION, credentials=setup, raw_delivery=False,
                             upload_events=True, key_description="image-service-production")
        sm = aws.client("secretsmanager", moto.url, REGION, setup)

        def secret(name: str, value: str) -> str:
            return sm.create_secret(Name=name, SecretString=value, KmsKeyId=made.key_arn)["ARN"]

        # Preliminary evaluation, for the names Terraform gives the database's users.
        data = taskdefs.production({}).module("stack").module("data")
        master, app_user, db_name = data.var("db_username"), data.var("db_app_username"), data.var("db_name")
        values = {
            "master": json.dumps({"username": master, "password": random_secrets.token_urlsafe(24)}),
            "app": json.dumps({"username": app_user, "password": random_secrets.token_urlsafe(24)}),
            "admin": "parity-admin-" + random_secrets.token_urlsafe(16),
        }
        arns = {
            "master": secret("rds!db-parity", values["master"]),
            "app": secret("image-service-production/db-app", values["app"]),
            "admin": secret("image-service-production/admin-api-key", values["admin"]),
            "delivery": sm.create_secret(Name="image-service-production/delivery-signing-key", KmsKeyId=made.key_arn)["ARN"],
        }
        postgres = servers.Postgres(certs, master, json.loads(values["master"])["password"], db_name)
        closers.append(postgres.close)
        redis = servers.Redis(certs, work / "redis.log")
        closers.append(redis.close)

        role_arn = {role: f"arn:aws:iam::{ACCOUNT}:role/image-service-production-{role}" for role in ("api", "worker", "replay")}
        log_group = lambda name: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/image-service-production/{name}"  # noqa: E731
        stand_ins: dict[str, object] = {
            f"{S}.compute.data.aws_region.current.region": REGION,
            f"{S}.iam.data.aws_region.current.region": REGION,
            f"{S}.iam.data.aws_caller_identity.current.account_id": ACCOUNT,
            f"{S}.iam.data.aws_partition.current.partition": "aws",
            f"{S}.registry.aws_ecr_repository.this.repository_url": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/image-service-production",
            f"{S}.registry.aws_ecr_repository.this.arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/image-service-production",
            f"{S}.data.aws_db_instance.this.address": "localhost",
            f"{S}.data.aws_db_instance.this.port": postgres.port,
            f"{S}.data.aws_db_instance.this.master_user_secret[0].secret_arn": arns["master"],
            f"{S}.data.aws_secretsmanager_secret_version.db_app.arn": arns["app"],
            f"{S}.data.aws_secretsmanager_secret.admin_api_key.arn": arns["admin"],
            f"{S}.data.aws_secretsmanager_secret.delivery_signing_key.arn": arns["delivery"],
            f"{S}.data.aws_elasticache_replication_group.this.primary_endpoint_address": "localhost",
            f"{S}.storage.aws_s3_bucket.media.id": made.bucket,
            f"{S}.storage.aws_s3_bucket.media.arn": made.bucket_arn,
            f"{S}.storage.aws_kms_key.this.arn": made.key_arn,
            f"{S}.storage.module.delivery.aws_cloudfront_distribution.this.domain_name": "d111111abcdef8.cloudfront.net",
            f'{S}.queues.aws_sqs_queue.queue["live"].url': made.queue_url,
            f'{S}.queues.aws_sqs_queue.queue["live"].arn': made.queue_arn,
            f'{S}.queues.aws_sqs_queue.dlq["live"].url': made.dlq_url,
            f'{S}.queues.aws_sqs_queue.dlq["live"].arn': made.dlq_arn,
            f'{S}.queues.aws_sqs_queue.queue["bulk"].url': made.bulk_queue_url,
            f'{S}.queues.aws_sqs_queue.queue["bulk"].arn': made.bulk_queue_arn,
            f'{S}.queues.aws_sqs_queue.dlq["bulk"].url': made.bulk_dlq_url,
            f'{S}.queues.aws_sqs_queue.dlq["bulk"].arn': made.bulk_dlq_arn,
            f"{S}.notifications.aws_sns_topic.events.arn": made.topic_arn,
            f"{S}.notifications.aws_sns_topic.chat.arn": made.chat_topic_arn,
            f'{S}.observability.aws_cloudwatch_log_group.this["api"].arn': log_group("api"),
            f'{S}.observability.aws_cloudwatch_log_group.this["worker"].arn': log_group("worker"),
            f'{S}.observability.aws_cloudwatch_log_group.this["ops"].arn': log_group("ops"),
            f"{S}.iam.aws_iam_role.execution.arn": f"arn:aws:iam::{ACCOUNT}:role/image-service-production-task-execution",
        }
        for role, arn in role_arn.items():
            stand_ins[f'{S}.iam.aws_iam_role.task["{role}"].arn'] = arn
        tasks, policies, execution = taskdefs.evaluate(stand_ins)

        iam = aws.client("iam", moto.url, REGION, setup)
        admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        keys = _users(iam, dict(policies, execution=execution, admin=admin))
        requests.post(f"{moto.url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, timeout=5).raise_for_status()

        exe, as_user = _install_binary(work)
        yield World(moto.url, made, certs, postgres, redis, tasks, policies, keys, values, work, exe, as_user)
    finally:
        for close in reversed(closers):
            close()
        if os.environ.get("PARITY_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def inject_secrets(world: World, task: taskdefs.Task) -> dict[str, str]:
    """What the ECS agent does before the container starts: each `secrets` entry read with the
    execution role's keys, a `:json-key::` suffix picking one key of a JSON secret."""
    sm = world.client("secretsmanager", "execution")
    out = {}
    for name, value_from in task.secrets.items():
        parts = value_from.split(":")
        arn, json_key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
        value = sm.get_secret_value(SecretId=arn)["SecretString"]
        out[name] = json.loads(value)[json_key] if json_key else value
    return out


def task_env(world: World, name: str, *, listen: str = "127.0.0.1:0", metrics: str = "127.0.0.1:0") -> dict[str, str]:
    """The whole environment a task's container would get, localised (tasks.localise)."""
    task = world.tasks[name]
    credentials = {}
    if task.role:
        key_id, secret = world.keys[task.role]
        credentials = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    env = taskdefs.localise(task, ca_file=world.certs.ca, endpoint=world.endpoint, credentials=credentials,
                            listen=listen, metrics=metrics, redis_port=world.redis.port)
    env.update(inject_secrets(world, task))
    # Nothing of this machine's environment: only what the task definition gives, plus a PATH
    # and the SDK kept off any local profile or instance metadata.
    env.update(PATH="/usr/bin:/bin", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true", HOME=str(world.exe.parent))
    return env


def run_task(world: World, name: str, extra: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """A one-off task to its end: its own command, its own environment."""
    task = world.tasks[name]
    return subprocess.run([*world.as_container_user, str(world.exe), *task.command, *(extra or [])], env=task_env(world, name),
                          cwd=world.exe.parent, capture_output=True, text=True, timeout=timeout)


@dataclass
class Services:
    api_url: str
    logs: dict[str, Path]
    admin_key: str

    def tail(self, lines: int = 60) -> str:
        return procs.tail_logs(self.logs, lines)


@pytest.fixture(scope="session")
def migrated(world):
    done = run_task(world, "migrate")
    assert done.returncode == 0, f"the migrate task failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def services(world, migrated):
    port = free_port()
    running, logs = [], {}
    try:
        for name in ("api", "worker"):
            env = task_env(world, name, listen=f"127.0.0.1:{port}", metrics=f"127.0.0.1:{free_port()}")
            logs[name] = world.work / f"{name}.log"
            argv = [*world.as_container_user, str(world.exe), *world.tasks[name].command]
            proc = procs.start(argv, logs[name], env, cwd=world.exe.parent)
            running.append(proc)
        up = Services(f"http://127.0.0.1:{port}", logs, world.secret_values["admin"])
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{up.api_url}/healthz", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if any(p.poll() is not None for p in running) or time.monotonic() > deadline:
                    pytest.fail(f"the services did not come up:\n{up.tail()}")
                time.sleep(0.2)
        yield up
    finally:
        for proc in running:
            procs.stop(proc, 15)


def machine_architecture() -> str:
    return {"x86_64": "X86_64", "amd64": "X86_64", "aarch64": "ARM64", "arm64": "ARM64"}.get(platform.machine().lower(), platform.machine())
