"""Production parity: the binary run with exactly the configuration terraform/envs/production
deploys (tasks.py says the few changes the test makes), against TLS Postgres and Redis servers
the test starts itself and the emulator with the Terraform IAM policies enforced.

What this cannot show (docs/deploy.md, "What the parity test covers"): real IAM evaluation
(moto's is a simulation, tests/infra/iam/emulator.py), real KMS, RDS's own CA and its
rds_superuser master user (here the master is a true superuser), ECS's own secret injection.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from conftest import ROOT, machine_architecture, run_task

PHOTO = ROOT / "testdata" / "kleiber.jpg"


def auth(services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.admin_key}"}


def wait_job(services, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{services.api_url}/v1/jobs/{job_id}", headers=auth(services), timeout=10)
        assert answer.status_code == 200, f"GET /v1/jobs/{job_id}: {answer.status_code} {answer.text}\n{services.tail()}"
        job = answer.json()
        if job["status"] in ("succeeded", "failed", "dead"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}\n{services.tail()}"
        time.sleep(0.5)


def test_every_task_runs_on_one_architecture_this_binary_has(world):
    architectures = {name: task.architecture for name, task in world.tasks.items()}
    assert set(architectures) == {"api", "worker", "migrate", "replay"}, architectures
    assert len(set(architectures.values())) == 1, architectures
    assert set(architectures.values()) == {machine_architecture()}, (
        f"the task definitions run {architectures}, this machine's binary is {machine_architecture()}"
    )


def test_only_hosts_endpoints_and_cas_change(world):
    """The localised environment differs from the task definition only where tasks.py says."""
    from conftest import task_env

    for name, task in world.tasks.items():
        env = task_env(world, name)
        changed = {k for k in task.environment if env.get(k) != task.environment[k]}
        assert changed <= {"DATABASE_URL", "REDIS_URL", "LISTEN_ADDR", "METRICS_ADDR"}, (name, changed)
        if "DATABASE_URL" in changed:
            before, after = task.environment["DATABASE_URL"], env["DATABASE_URL"]
            assert before.split("sslrootcert=")[0] == after.split("sslrootcert=")[0], (before, after)
        if "REDIS_URL" in changed:
            before, after = urlsplit(task.environment["REDIS_URL"]), urlsplit(env["REDIS_URL"])
            assert (before.scheme, before.hostname) == (after.scheme, after.hostname) == ("rediss", "localhost"), (before, after)
        added = set(env) - set(task.environment) - set(task.secrets)
        allowed = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REDIS_CA_FILE",
                   "PATH", "HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED"}
        assert added <= allowed, (name, added - allowed)


def test_every_task_gets_both_lanes_as_terraform_made_them(world):
    """The live queue and the bulk lane (replays, reprocessing), each with its DLQ: the URLs the
    queues module exports, in every task definition that reads a queue."""
    lanes = {
        "SQS_QUEUE_URL": world.made.queue_url,
        "SQS_DLQ_URL": world.made.dlq_url,
        "SQS_BULK_QUEUE_URL": world.made.bulk_queue_url,
        "SQS_BULK_DLQ_URL": world.made.bulk_dlq_url,
    }
    for name, task in world.tasks.items():
        assert {k: task.environment.get(k) for k in lanes} == lanes, name


def test_the_api_keeps_idle_connections_longer_than_the_alb(world):
    """An api that closes a keep-alive connection the ALB is about to reuse gets the client a 502."""
    from tasks import production

    alb = production({}).module("stack").module("compute").resource("aws_lb", "api")
    api = world.tasks["api"].environment
    assert int(api["HTTP_HEADER_READ_TIMEOUT_SECS"]) > int(alb.attr("idle_timeout")), api
    assert api["TRUSTED_PROXY_HEADER"].lower() == "x-forwarded-for", api


def test_the_migrate_task_runs_under_its_own_definition(world, migrated):
    migrate = world.tasks["migrate"]
    assert migrate.role is None, "migrate runs with no task role"
    tables = world.postgres.psql_local(world.postgres.database, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'")
    assert tables.strip() == "1", migrated.stderr
    # Run twice, as every release does: migrations and grants are idempotent.
    again = run_task(world, "migrate")
    assert again.returncode == 0, again.stderr


def test_the_services_role_reads_and_writes_rows_but_is_refused_ddl(world, migrated):
    app = json.loads(world.secret_values["app"])
    pg = world.postgres
    ok = pg.psql_tls(app["username"], app["password"], world.certs.ca, "SELECT count(*) FROM jobs")
    assert ok.returncode == 0, ok.stderr
    for ddl, refusal in (
        ("CREATE TABLE parity_probe (id int)", "permission denied for schema public"),
        ("ALTER TABLE jobs ADD COLUMN parity_probe int", "must be owner of table jobs"),
        ("DROP TABLE jobs", "must be owner of table jobs"),
        ("CREATE ROLE parity_probe", "permission denied to create role"),
    ):
        refused = pg.psql_tls(app["username"], app["password"], world.certs.ca, ddl)
        assert refused.returncode != 0, f"the application role ran {ddl!r}"
        assert refusal in refused.stderr, (ddl, refused.stderr)
    # TLS only, and the certificate is checked: a wrong CA is refused before any password.
    wrong_ca = world.work / "wrong-ca.pem"
    wrong_ca.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() if Path("/etc/ssl/certs/ca-certificates.crt").exists() else "")
    refused = pg.psql_tls(app["username"], app["password"], wrong_ca, "SELECT 1")
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr, refused.stderr


def test_readyz_is_ready_under_the_api_policy(services):
    answer = requests.get(f"{services.api_url}/readyz", timeout=30)
    assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{services.tail()}"


def test_a_presigned_upload_becomes_variants_and_an_event(world, services):
    photo = PHOTO.read_bytes()
    ticket = requests.post(f"{services.api_url}/v1/uploads", headers=auth(services),
                           json={"content_type": "image/jpeg", "content_length": len(photo)}, timeout=10)
    assert ticket.status_code == 201, f"{ticket.status_code} {ticket.text}\n{services.tail()}"
    body = ticket.json()
    job_id = body["job"]["id"]
    upload = body["upload"]
    # A presigned PUT acts with the api's permissions. moto answers query-string-signed requests
    # with 500 under IAM enforcement (tests/infra/iam, test_moto_cannot_authorize_presigned_
    # requests), so the same PUT goes with the api's keys in the header, with the signed headers.
    assert upload["method"] == "PUT"
    target = urlsplit(upload["url"])
    assert f"{target.scheme}://{target.netloc}" == world.endpoint, upload["url"]
    bucket, key = target.path.lstrip("/").split("/", 1)
    assert bucket == world.made.bucket and key == f"uploads/{job_id}", upload["url"]
    headers = {k.lower(): v for k, v in upload["headers"].items()}
    world.client("s3", "api").put_object(Bucket=bucket, Key=key, Body=photo, ContentType=headers["content-type"])
    job = wait_job(services, job_id)
    assert job["status"] == "succeeded", f"{job}\n{services.tail()}"

    image = requests.get(f"{services.api_url}/v1/images/{job['image_id']}", headers=auth(services), timeout=10).json()
    s3 = world.client("s3")
    keys = [v["key"] for v in image["variants"]]
    assert keys, image
    for key in keys:
        head = s3.head_object(Bucket=world.made.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith(world.made.key_arn.split("/")[-1]), head["SSEKMSKeyId"]

    sqs = world.client("sqs")
    deadline = time.monotonic() + 30
    while True:
        messages = sqs.receive_message(QueueUrl=world.made.tap_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        events = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
        mine = [e for e in events if isinstance(e, dict) and e.get("job_id") == job_id]
        if mine:
            assert mine[0]["event"] == "image.processed", mine[0]
            break
        assert time.monotonic() < deadline, f"no event for {job_id}\n{services.tail()}"


def test_a_cached_get_is_served_over_rediss(world, services):
    answer = requests.post(f"{services.api_url}/v1/images", headers=auth(services),
                           files={"file": ("photo.jpg", PHOTO.read_bytes(), "image/jpeg")}, timeout=30)
    assert answer.status_code == 202, f"{answer.status_code} {answer.text}"
    job = wait_job(services, answer.json()["id"])
    assert job["status"] == "succeeded", job
    # The api reads through Redis (a local tier in front answers repeats, so not every GET
    # reaches it). Redis speaks only TLS here, so any GET it processed came over rediss://. A
    # first connect can miss its deadline on a busy machine; the cache then rests for 5 s and
    # tries again, so the reads go on for a while.
    def reads() -> int:
        stats = world.redis.info("stats")
        return int(stats.get("keyspace_hits", "0")) + int(stats.get("keyspace_misses", "0"))

    before = reads()
    deadline = time.monotonic() + 30
    while True:
        again = requests.get(f"{services.api_url}/v1/jobs/{job['id']}", headers=auth(services), timeout=10)
        assert again.status_code == 200, f"{again.status_code} {again.text}\n{services.tail()}"
        assert again.json()["status"] == "succeeded"
        if reads() > before and int(world.redis.command("DBSIZE").strip().lstrip(":")) > 0:
            break
        assert time.monotonic() < deadline, f"the api never read through rediss:// ({before} reads)\n{services.tail()}"
        time.sleep(0.5)


def test_replay_dlq_runs_under_its_task_definition(world, services):
    """Dead messages of both DLQs go to the bulk lane through `replay dlq` as the replay task runs
    it (the replay role may send to the bulk lane only)."""
    replay = world.tasks["replay"]
    assert replay.command[:2] == ["replay", "dlq"], replay.command
    sqs = world.client("sqs")
    for dlq in (world.made.dlq_url, world.made.bulk_dlq_url):
        body = json.dumps({"job_id": str(uuid.uuid4()), "parity": True})
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    done = run_task(world, "replay")
    assert done.returncode == 0, f"replay dlq failed:\n{done.stdout}\n{done.stderr}"
    for dlq in (world.made.dlq_url, world.made.bulk_dlq_url):
        left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        assert left["Attributes"]["ApproximateNumberOfMessages"] == "0", (dlq, done.stdout)
