"""The system under test, on one backend set, and the handles the faults and the ledger use.

- `aws`: moto behind the HTTP fault proxy (S3, SQS, SNS), a Postgres of the run's own
  behind a TCP fault proxy, a Redis of its own; one API and several workers.
- `embedded`: SQLite and the queue table in DATA_DIR, objects on local disk under
  STORAGE_DIR (a small tmpfs, so the disk can fill up), console events; the same Redis.

Both send every event to a webhook receiver of the run's as well. The harness itself
talks to moto, Postgres and SQLite directly, never through a proxy."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import sqlite3
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from harness import aws, procs
from harness.ports import free_port

from .effects import Events, WebhookReceiver
from .proxy import HttpFaultProxy, TcpFaultProxy
from .services import Postgres, Redis, SmallDisk

ROOT = Path(__file__).resolve().parents[3]
BACKENDS = ("embedded", "aws")


def base_env(api_port: int, api_key: str, redis_url: str, webhook_url: str) -> dict[str, str]:
    """The settings both backends share: short waits and retries, so that faults show fast."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SQS_", "SNS_", "S3_", "REDIS", "DATABASE"))}
    env.update(
        LISTEN_ADDR=f"127.0.0.1:{api_port}",
        METRICS_ADDR="127.0.0.1:0",
        QUEUE_WAIT_SECS="1",
        VISIBILITY_TIMEOUT_SECS="8",
        RETRY_BASE_DELAY_MS="500",
        MAX_RECEIVE_COUNT="10",
        WORKER_CONCURRENCY="2",
        SHUTDOWN_DEADLINE_SECS="5",
        LOG_FORMAT="json",
        REDIS_URL=redis_url,
        WEBHOOK_URL=webhook_url,
        # The client authenticates with a bootstrap admin key; the rate limits are
        # a policy, not what this run tests.
        ADMIN_API_KEY=api_key,
        RATE_LIMIT_PER_SECOND="100000",
        RATE_LIMIT_BURST="100000",
        TENANT_RATE_LIMIT_PER_SECOND="100000",
        TENANT_RATE_LIMIT_BURST="100000",
    )
    return env


class Cluster:
    """Everything one run on one backend starts; close() stops it all, even half built."""

    backend = ""

    def __init__(self, binary: str, workers: int, rng: random.Random) -> None:
        self.binary, self.rng, self.worker_count = binary, rng, workers
        self.work = Path(tempfile.mkdtemp(prefix=f"chaos-{self.backend}-"))
        self.logs = open(self.work / "processes.log", "ab")
        self.run_id = uuid.uuid4().hex[:8]
        self.api_port = free_port()
        self.api_key = f"chaos-{self.run_id}"
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.outputs: list[Path] = []  # every worker's stdout (console events)
        self.started = 0
        self.api_restarts = 0
        self.events = Events()
        self.closers: list = []
        self.redis: Redis | None = None
        self.webhook: WebhookReceiver | None = None
        try:
            self.redis = Redis(self.work)
            self.closers.append(self.redis.close)
            self.webhook = WebhookReceiver(self.events, rng)
            self.closers.append(self.webhook.close)
            self.env = base_env(self.api_port, self.api_key, self.redis.url, self.webhook.url)
            self._set_up()
            subprocess.run([binary, "migrate"], env=self.env, check=True, stdout=self.logs, stderr=self.logs)
            self.start_api()
            self.workers = [self._worker() for _ in range(workers)]
        except BaseException:
            self.close()
            raise

    def _set_up(self) -> None:
        raise NotImplementedError

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self) -> None:
        self.api = procs.start([self.binary, "api"], self.logs, self.env)
        procs.wait_http(f"{self.api_url}/healthz", 30, self.api)

    def restart_api(self) -> None:
        """SIGKILLs the API and starts a new one on the same port."""
        procs.kill(self.api)
        self.api_restarts += 1
        self.start_api()

    def _worker(self) -> subprocess.Popen:
        self.started += 1
        out = self.work / f"worker-{self.started}.out"
        self.outputs.append(out)
        with open(out, "wb") as stdout:
            return subprocess.Popen([self.binary, "worker"], env=self.env, stdout=stdout, stderr=self.logs)

    def kill_worker(self, victim: int) -> None:
        """SIGKILLs worker `victim` and starts a new one in its place."""
        procs.kill(self.workers[victim])
        self.workers[victim] = self._worker()

    def stop_services(self) -> None:
        """SIGTERM to the API and the workers (they finish what they hold), then SIGKILL."""
        for p in [*self.workers, self.api]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.api]:
            if p is not None:
                procs.stop(p, 10)

    # What the ledger reads ------------------------------------------------------------
    def query(self, sql: str) -> list[dict]:
        raise NotImplementedError

    def objects(self) -> dict[str, int]:
        """Every stored object: key -> size."""
        raise NotImplementedError

    def read_object(self, key: str) -> bytes | None:
        raise NotImplementedError

    def collect_events(self) -> None:
        """Pulls in the events that arrive by polling (the SNS tap, console lines)."""

    def event_channels(self) -> tuple[str, ...]:
        """Where this backend's events go: each is checked on its own."""
        raise NotImplementedError

    def queue_left(self) -> int:
        """Job messages still on the job queue (visible or in flight)."""
        raise NotImplementedError

    def finished(self) -> int:
        """Jobs in a final state now (read straight from the database); -1 if it can't be read."""
        try:
            rows = self.query("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('succeeded', 'failed', 'dead')")
            return int(rows[0]["n"])
        except (subprocess.CalledProcessError, sqlite3.Error, OSError):
            return -1  # Postgres restarting: no kill this time

    def diagnose(self) -> list[str]:
        """What the services are waiting on, when jobs stop moving: every worker's TCP
        connections (`ss`), and on AWS the emulator requests still unanswered."""
        lines = []
        for p in self.workers:
            out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True).stdout
            mine = [ln.split()[0] + " " + " ".join(ln.split()[3:5]) for ln in out.splitlines() if f"pid={p.pid}," in ln]
            lines.append(f"worker {p.pid}: {len(mine)} connections: {mine[:12]}")
        return lines

    def send_duplicate(self, job: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for p in [*self.workers, self.api]:
            if p is not None and p.poll() is None:
                procs.kill(p)
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001 (close everything, whatever one does)
                pass
        self.logs.close()


def job_body(job: dict) -> str:
    """The job's message, as the API sends it (pipeline::message::JobMessage)."""
    return json.dumps({"v": 1, "job_id": job["id"], "image_id": job["image_id"],
                       "source_key": f"originals/{job['image_id']}"})


class AwsCluster(Cluster):
    backend = "aws"

    def _set_up(self) -> None:
        self.moto = procs.Moto(ROOT / ".venv/test/bin/moto_server", self.work / "moto.log")
        self.closers.append(self.moto.close)
        self.proxy = HttpFaultProxy(self.moto.port, self.rng)
        self.closers.append(self.proxy.close)
        aws.use_emulator_credentials()
        self.resources = aws.provision(self.moto.url, aws.Names.for_run("chaos", self.run_id), visibility_timeout=8,
                                       max_receive_count=10, upload_events=False, key_description="chaos")
        self.sqs = aws.client("sqs", self.moto.url)
        self.s3 = aws.client("s3", self.moto.url)
        self.postgres = Postgres(self.work)
        self.closers.append(self.postgres.close)
        self.database = f"chaos_{self.run_id}"
        self.postgres.create_database(self.database)
        self.pg_proxy = TcpFaultProxy(self.postgres.port)
        self.closers.append(self.pg_proxy.close)
        self.env.update(aws.EMULATOR_CREDENTIALS, AWS_DEFAULT_REGION=aws.REGION)
        # The worker learns of the dead-letter queue only from the redrive policy.
        self.env.update(self.resources.service_env(dlq=False))
        self.env.update(DATABASE_URL=self.postgres.url(self.pg_proxy.port, self.database),
                        AWS_ENDPOINT_URL=self.proxy.url)

    def query(self, sql: str) -> list[dict]:
        out = subprocess.run(["psql", self.postgres.url(database=self.database), "--csv", "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return list(csv.DictReader(io.StringIO(out)))

    def objects(self) -> dict[str, int]:
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.resources.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
        return found

    def read_object(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def collect_events(self) -> None:
        from .effects import drain_tap

        drain_tap(self.events, self.sqs, self.resources.tap_url)

    def send_duplicate(self, job: dict) -> None:
        self.sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=job_body(job))

    def event_channels(self) -> tuple[str, ...]:
        return ("sns", "webhook")

    def diagnose(self) -> list[str]:
        lines = super().diagnose()
        lines.append(f"emulator requests unanswered: {self.proxy.stuck(5.0) or 'none'}")
        lines.append(f"ports: emulator proxy {self.proxy.port}, postgres proxy {self.pg_proxy.port}, "
                     f"moto {self.moto.port}, postgres {self.postgres.port}, redis {self.redis.port}")
        return lines

    def queue_left(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = self.sqs.get_queue_attributes(QueueUrl=self.resources.queue_url, AttributeNames=names)["Attributes"]
        return sum(int(got[n]) for n in names)


class EmbeddedCluster(Cluster):
    backend = "embedded"

    def __init__(self, binary: str, workers: int, rng: random.Random, jobs: int) -> None:
        # Room for every job's original and variants (the largest test image is 0.8 MB,
        # its variants less), so the disk is full only when the run fills it. tmpfs takes
        # memory only for what is written.
        self.disk_mb = 64 + 2 * jobs
        super().__init__(binary, workers, rng)

    def _set_up(self) -> None:
        self.data_dir = self.work / "data"
        self.data_dir.mkdir()
        self.storage = self.work / "objects"
        self.disk = SmallDisk.try_mount(self.storage, self.disk_mb)
        if self.disk is not None:
            self.closers.append(self.disk.close)
        else:
            self.storage.mkdir(exist_ok=True)
        self.db_path = self.data_dir / "chaos.sqlite"
        self.env.update(DATA_DIR=str(self.data_dir), STORAGE_DIR=str(self.storage),
                        DATABASE_URL=f"sqlite://{self.db_path}?mode=rwc")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def query(self, sql: str) -> list[dict]:
        with self._connect() as db:
            return [{k: _text(row[k]) for k in row.keys()} for row in db.execute(sql)]

    def objects(self) -> dict[str, int]:
        found = {}
        for path in self.storage.rglob("*"):
            if path.is_file() and path.name != ".chaos-filler":
                found[str(path.relative_to(self.storage))] = path.stat().st_size
        return found

    def read_object(self, key: str) -> bytes | None:
        path = self.storage / key
        return path.read_bytes() if path.is_file() else None

    def collect_events(self) -> None:
        """The console lines from every worker's stdout, read afresh each time."""
        from .effects import read_console

        with self.events.lock:
            self.events.deliveries = [d for d in self.events.deliveries if d.channel != "console"]
        read_console(self.events, self.outputs)

    def event_channels(self) -> tuple[str, ...]:
        return ("console", "webhook")

    def queue_left(self) -> int:
        rows = self.query("SELECT COUNT(*) AS n FROM queue_messages WHERE queue = 'jobs'")
        return int(rows[0]["n"])

    def send_duplicate(self, job: dict) -> None:
        """A second row in `queue_messages` for the job, as a repeated send would make."""
        now = int(time.time() * 1000)
        with self._connect() as db:
            columns = {row["name"] for row in db.execute("PRAGMA table_info(queue_messages)")}
            tenant = db.execute("SELECT tenant_id FROM jobs WHERE id = ? OR id = ?",
                                (job["id"], uuid.UUID(job["id"]).bytes)).fetchone()
            values = {"queue": "jobs", "body": job_body(job), "receipt": None, "receive_count": 0,
                      "sent_at_ms": now, "visible_at_ms": now}
            if "fair_group" in columns:
                values["fair_group"] = _text(tenant[0]) if tenant else None
            if "fair_key" in columns:
                values["fair_key"] = 0
            names = ", ".join(values)
            db.execute(f"INSERT INTO queue_messages ({names}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))


def _text(value):
    """SQLite keeps sea-orm's UUIDs as 16-byte blobs: the text form, as Postgres gives."""
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return value


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(backend: str, binary: str, workers: int, rng: random.Random, jobs: int) -> Cluster:
    if backend == "embedded":
        return EmbeddedCluster(binary, workers, rng, jobs)
    return AwsCluster(binary, workers, rng)

