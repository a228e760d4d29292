"""Fixtures for the least-privilege check: an emulator with IAM enforcement, our resources, one
IAM user per role holding the rendered Terraform policy, and the real binary's api and worker.
Both publish to the event topic and, for the events in CHAT_EVENTS, to the chat topic (AWS
Chatbot's); each topic has an SQS subscriber the tests read.

Order matters: resources and users are created while moto still accepts any credentials; then
`POST /moto-api/reset-auth` with body "0" (the number of requests still allowed without auth,
read by moto/moto_api/_internal/responses.py into settings.INITIAL_NO_AUTH_ACTION_COUNT) turns
enforcement on, and from then on every request must be signed by an IAM user's access key and
be allowed by that user's policies. The `admin` user (Action "*") is how the tests look at the
stack afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from harness import aws, procs  # noqa: E402
from harness.ports import free_port  # noqa: E402

TEMPLATES = ROOT / "terraform" / "modules" / "iam" / "policies"
REGION = "us-east-1"
ROLES = ("api", "worker")
# Enables the api's admin endpoints (POST /v1/admin/replay/dlq, ...), which run replays in the api.
ADMIN_API_KEY = "iam-check-admin-key"
# Wider than the default (image.failed,replay.summary) so that the successful jobs of the tests
# also publish to the chat topic, exercising the worker's grant on it.
CHAT_EVENTS = "image.processed,replay.summary"




def render(template: Path, variables: dict[str, str]) -> str:
    """Terraform's templatefile() for these templates: ${name} interpolation only."""
    text = template.read_text(encoding="utf-8")
    assert "%{" not in text, f"{template.name} uses template directives this renderer does not handle"
    missing = set(re.findall(r"\$\{(\w+)\}", text)) - variables.keys()
    assert not missing, f"{template.name} needs {sorted(missing)}"
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], text)
    json.loads(rendered)
    return rendered


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str


@dataclass
class Stack:
    endpoint: str
    bucket: str
    bucket_arn: str
    kms_key_arn: str
    other_kms_key_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    bulk_queue_url: str
    bulk_queue_arn: str
    bulk_dlq_url: str
    bulk_dlq_arn: str
    topic_arn: str
    chat_topic_arn: str
    other_topic_arn: str
    subscriber_url: str
    chat_subscriber_url: str
    policies: dict[str, str]
    creds: dict[str, Creds]

    def client(self, service: str, who: str):
        return make_client(self.endpoint, service, self.creds[who])


def make_client(endpoint: str, service: str, creds: Creds):
    return aws.client(service, endpoint, REGION, (creds.access_key_id, creds.secret_access_key), max_attempts=1)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """moto on a free port (never 5000), with the corrections of emulator.py."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    try:
        moto = procs.Moto([sys.executable, str(HERE / "emulator.py")], log, timeout=30)
    except RuntimeError as err:
        pytest.fail(str(err))
    with moto:
        yield moto.url


# The service's resources, as harness.aws makes them for every tool (the bulk lane and its DLQ
# named after the job queue: image-service-jobs-bulk, image-service-jobs-bulk-dlq); the tests
# read SNS's envelope (no raw delivery) and use direct uploads (S3 events to the job queue).
NAMES = aws.Names(
    bucket="image-service-iam-media",
    queue="image-service-jobs",
    dlq="image-service-jobs-dlq",
    topic="image-service-events",
    tap="image-service-events-subscriber",
    chat_topic="image-service-chat",
    chat_tap="image-service-chat-subscriber",
)


def users(iam, policies: dict[str, str]) -> dict[str, Creds]:
    """One IAM user per role holding its rendered policy, and `admin` (Action "*")."""
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    creds: dict[str, Creds] = {}
    for user, document in dict(policies, admin=json.dumps(admin)).items():
        iam.create_user(UserName=user)
        # An inline policy, as aws_iam_role_policy attaches it to the task role.
        iam.put_user_policy(UserName=user, PolicyName=f"{user}-least-privilege", PolicyDocument=document)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        creds[user] = Creds(key["AccessKeyId"], key["SecretAccessKey"])
    return creds


@pytest.fixture(scope="session")
def stack(emulator) -> Stack:
    setup = Creds("testing", "testing")  # any key works until enforcement is on
    made = aws.provision(emulator, NAMES, region=REGION, credentials=(setup.access_key_id, setup.secret_access_key),
                         raw_delivery=False, upload_events=True, key_description="image-service")
    kms, sns, iam = (make_client(emulator, s, setup) for s in ("kms", "sns", "iam"))
    other_key_arn = kms.create_key(Description="someone else's")["KeyMetadata"]["Arn"]
    other_topic_arn = sns.create_topic(Name="someone-elses-topic")["TopicArn"]

    variables = {
        "bucket_arn": made.bucket_arn,
        "queue_arn": made.queue_arn,
        "dlq_arn": made.dlq_arn,
        "bulk_queue_arn": made.bulk_queue_arn,
        "bulk_dlq_arn": made.bulk_dlq_arn,
        "topic_arn": made.topic_arn,
        "chat_topic_arn": made.chat_topic_arn,
        "kms_key_arn": made.key_arn,
        "ecs_tasks_arn": "arn:aws:ecs:us-east-1:123456789012:task/image-service-test/*",
        "region": REGION,
    }
    policies = {role: render(TEMPLATES / f"{role}.json.tpl", variables) for role in ROLES}
    creds = users(iam, policies)

    answer = requests.post(f"{emulator}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, timeout=5)
    answer.raise_for_status()

    return Stack(
        endpoint=emulator,
        bucket=made.bucket,
        bucket_arn=made.bucket_arn,
        kms_key_arn=made.key_arn,
        other_kms_key_arn=other_key_arn,
        queue_url=made.queue_url,
        queue_arn=made.queue_arn,
        dlq_url=made.dlq_url,
        dlq_arn=made.dlq_arn,
        bulk_queue_url=made.bulk_queue_url,
        bulk_queue_arn=made.bulk_queue_arn,
        bulk_dlq_url=made.bulk_dlq_url,
        bulk_dlq_arn=made.bulk_dlq_arn,
        topic_arn=made.topic_arn,
        chat_topic_arn=made.chat_topic_arn,
        other_topic_arn=other_topic_arn,
        subscriber_url=made.tap_url,
        chat_subscriber_url=made.chat_tap_url,
        policies=policies,
        creds=dict(creds, setup=setup),
    )


@dataclass
class Services:
    api_url: str
    logs: dict[str, Path]
    # Every API call sends the bootstrap admin key: the api asks for a key on every endpoint but
    # health, metrics and the OpenAPI document (API_AUTH=required, the default).
    http: requests.Session

    def tail(self, lines: int = 40) -> str:
        return procs.tail_logs(self.logs, lines)


@pytest.fixture(scope="session")
def service_env(stack, tmp_path_factory):
    """The environment both roles share: the README's configuration table, emulator endpoint."""
    work = tmp_path_factory.mktemp("service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        DATABASE_URL=f"sqlite://{work}/db.sqlite?mode=rwc",
        DATA_DIR=str(work / "data"),
        S3_BUCKET=stack.bucket,
        S3_KMS_KEY_ID=stack.kms_key_arn,
        SQS_QUEUE_URL=stack.queue_url,
        SQS_DLQ_URL=stack.dlq_url,
        SQS_BULK_QUEUE_URL=stack.bulk_queue_url,
        SQS_BULK_DLQ_URL=stack.bulk_dlq_url,
        SNS_TOPIC_ARN=stack.topic_arn,
        SNS_CHAT_TOPIC_ARN=stack.chat_topic_arn,
        CHAT_EVENTS=CHAT_EVENTS,
        AWS_ENDPOINT_URL=stack.endpoint,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        QUEUE_WAIT_SECS="1",
        METRICS_ADDR="127.0.0.1:0",
        APP_ENV="iam-check",
        RUST_LOG="info",
        # Every job then tags its original (s3:PutObjectTagging on originals/*).
        ORIGINALS_RETENTION_DAYS="30",
        ORIGINALS_RETENTION_CHOICES="30,90,365",
    )
    for name in ("WEBHOOK_URL", "SLACK_WEBHOOK_URL", "DISCORD_WEBHOOK_URL", "ADMIN_API_KEY", "PUBLIC_BASE_URL"):
        env.pop(name, None)
    env.pop("REDIS_URL", None)
    return work, env


@pytest.fixture(scope="session")
def services(service_env, stack):
    """`image-service migrate`, then `api` with the api user's keys and `worker` with the worker's."""
    exe = procs.service_binary()
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: build it first (scripts/test builds it), or set IMAGE_SERVICE_BIN")
    work, env = service_env

    migrate = subprocess.run([str(exe), "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}"

    port = free_port()
    # An upload over MAX_UPLOAD_BYTES that is still longer than one 8 MiB part takes the
    # multipart path and then has to be aborted (test_api_can_abort_its_multipart_uploads).
    role_env = {
        "api": dict(LISTEN_ADDR=f"127.0.0.1:{port}", MAX_UPLOAD_BYTES=str(9 * 1024 * 1024), ADMIN_API_KEY=ADMIN_API_KEY),
        "worker": dict(WORKER_CONCURRENCY="2"),
    }
    running_procs: list[subprocess.Popen] = []
    logs: dict[str, Path] = {}
    try:
        for role in ROLES:
            creds = stack.creds[role]
            logs[role] = work / f"{role}.log"
            keys = dict(AWS_ACCESS_KEY_ID=creds.access_key_id, AWS_SECRET_ACCESS_KEY=creds.secret_access_key)
            running_procs.append(procs.start([exe, role], logs[role], dict(env, **keys, **role_env[role])))
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {ADMIN_API_KEY}"
        running = Services(api_url=f"http://127.0.0.1:{port}", logs=logs, http=http)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{running.api_url}/healthz", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                exited = [p.args[1] for p in running_procs if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    pytest.fail(f"{exited or 'api'} did not come up:\n{running.tail()}")
                time.sleep(0.2)
        yield running
    finally:
        for proc in running_procs:
            procs.stop(proc, 15)


class EventLog:
    """Everything the event topic delivered to its SQS subscriber: job events by job id, and
    the events without a job (replay summaries, image deletions) in order."""

    def __init__(self, stack: Stack):
        self.sqs = stack.client("sqs", "admin")
        self.url = stack.subscriber_url
        self.events: dict[str, tuple[dict, dict]] = {}
        self.summaries: list[tuple[dict, dict]] = []

    def _keep(self, envelope: dict, body) -> None:
        if isinstance(body, dict) and body.get("job_id"):  # the tests' own publishes carry none
            self.events[body["job_id"]] = (envelope, body)
        elif isinstance(body, dict) and body.get("event") in ("replay.summary", "image.deleted"):
            self.summaries.append((envelope, body))

    def _candidates(self) -> list[tuple[dict, dict]]:
        return list(self.events.values()) + self.summaries

    def _poll(self) -> None:
        answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            envelope = json.loads(message["Body"])
            self._keep(envelope, json.loads(envelope["Message"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def wait(self, predicate, timeout: float = 15) -> tuple[dict, dict] | None:
        deadline = time.monotonic() + timeout
        while True:
            for event in self._candidates():
                if predicate(*event):
                    return event
            if time.monotonic() > deadline:
                return None
            self._poll()


class ChatLog(EventLog):
    """Everything the chat topic delivered to its SQS subscriber: AWS Chatbot custom
    notifications, whose `id` is the event's `event_id`."""

    def __init__(self, stack: Stack):
        super().__init__(stack)
        self.url = stack.chat_subscriber_url
        self.notifications: list[tuple[dict, dict]] = []

    def _keep(self, envelope: dict, body) -> None:
        if isinstance(body, dict) and body.get("source") == "custom":  # the tests' own publishes are "{}"
            self.notifications.append((envelope, body))

    def _candidates(self) -> list[tuple[dict, dict]]:
        return list(self.notifications)


@pytest.fixture(scope="session")
def events(stack) -> EventLog:
    return EventLog(stack)


@pytest.fixture(scope="session")
def chat(stack) -> ChatLog:
    return ChatLog(stack)
