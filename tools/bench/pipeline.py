"""The pipeline benchmark (issue #10): the service as it is deployed.

Runs `image-service api` and `image-service worker` as separate processes on
the embedded defaults (SQLite in DATA_DIR, objects on disk, the queue table)
and on the AWS path (moto for S3/SQS/SNS/KMS, a fresh Postgres database),
drives them through the HTTP API, hears each job's outcome on a webhook this
script serves (WEBHOOK_URL), and prints one table:

  1. throughput on the 8 large photos of the corpus (>= 100 jobs, default
     presets, 1 worker with WORKER_CONCURRENCY=2), against the engine alone on
     the same files at the same concurrency, in the same run, interleaved;
  2. overhead on 64x64 JPEGs: jobs/s and CPU ms per job of the API and the
     worker processes (/proc/PID/stat), for the first jobs on fresh tables
     and for jobs once the tables hold ROWS jobs (pre-filled by SQL copies of
     a real job, or by running jobs: --prefill), in pairs of runs back to
     back (--tiny-rounds), so the change is a median of paired ratios;
  3. upload-to-event latency, p50/p99, one job at a time and under open-loop
     arrivals at 80% of the throughput measured in 2, beside the engine's time
     for the same image;
  4. scaling on the photos: 1 worker process x 1 slot, 2 processes x 1 slot,
     1 process x 2 slots;
  5. peak RSS (VmHWM) of the worker at its concurrency, and of the API during
     a burst of 2 MB uploads against a burst of small ones.

On the AWS path it also counts the emulator's requests and CPU time, and
times raw SQS/S3 calls, so the emulator's share of the cost is visible.

Run it through scripts/bench-pipeline, which sets up the virtualenvs and the
binaries. Exits non-zero if any job is lost, fails, or never announces its
outcome.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LARGE = ["seeding", "kleiber", "dragonfly", "sunset", "wine", "olympus_ep3", "iphone6", "nokia83"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def status_kib(pid: int, key: str) -> int:
    """A `VmHWM`/`VmRSS` line of /proc/PID/status, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the event receiver (WEBHOOK_URL) --------------------------------------


class Events:
    """A webhook receiver: records when each job's outcome event arrived."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.first: dict[str, tuple[float, str, dict]] = {}
        self.deliveries = 0
        events = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    event = json.loads(body)
                except ValueError:
                    return
                events.record(event, arrived)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, event: dict, arrived: float) -> None:
        job = event.get("job_id")
        with self.cond:
            self.deliveries += 1
            if job and job not in self.first:
                self.first[job] = (arrived, event.get("status", "?"), event.get("timings") or {})
                self.cond.notify_all()

    def get(self, job: str):
        with self.cond:
            return self.first.get(job)

    def wait(self, jobs: list[str], timeout: float) -> dict[str, tuple[float, str, dict]]:
        """Waits until every job has an event, or the timeout; returns those that came."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                if all(j in self.first for j in jobs):
                    break
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
            return {j: self.first[j] for j in jobs if j in self.first}

    def close(self) -> None:
        self.server.shutdown()


# --- the API client ----------------------------------------------------------


class Api:
    """Uploads through the API, one keep-alive connection per thread."""

    def __init__(self, port: int, key: str | None) -> None:
        self.port = port
        self.key = key
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.port != self.port:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        headers = {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if content_type:
            headers["Content-Type"] = content_type
        last: Exception | None = None
        for attempt in range(5):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, data
            except (OSError, http.client.HTTPException) as err:
                last = err
                conn.close()
                self.local.conn = None
                time.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"{method} {path}: {last}")

    def upload(self, body: bytes, content_type: str = "image/jpeg") -> str:
        status, data = self.request("POST", "/v1/images", body, content_type)
        if status != 202:
            raise RuntimeError(f"upload answered {status}: {data[:300]!r}")
        return json.loads(data)["id"]

    def job(self, job_id: str) -> dict:
        status, data = self.request("GET", f"/v1/jobs/{job_id}")
        return json.loads(data) if status == 200 else {"status": f"http-{status}"}


# --- one backend set: processes and resources ------------------------------


class Moto:
    """The AWS emulator from .venv/test, with its request log."""

    CREDENTIALS = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")

    def __init__(self, server: str, work: Path) -> None:
        # Only the emulator's dummy credentials, so no real account or profile leaks in.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        os.environ.update(self.CREDENTIALS, AWS_DEFAULT_REGION="us-east-1")
        self.port = free_port()
        self.log_path = work / "moto.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(f"{self.url}/moto-api/data.json", 60, self.proc)

    def requests(self) -> int:
        """Requests moto has logged so far (werkzeug logs one line per request)."""
        pattern = re.compile(rb'"[A-Z]+ \S+ HTTP/1\.[01]" \d{3}')
        with open(self.log_path, "rb") as f:
            return sum(1 for line in f if pattern.search(line))

    def close(self) -> None:
        stop(self.proc, 5)
        self.log.close()


def wait_http(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


def stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Stack:
    """One backend set: its settings, its API process and its worker processes."""

    def __init__(self, backend: str, args, work: Path, events: Events, moto: Moto | None) -> None:
        self.backend = backend
        self.args = args
        self.work = work
        self.moto = moto
        self.api_proc: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.slots: int | None = None
        self.api_port = free_port()
        self.database = None
        self.pg = args.postgres_url.rstrip("/")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_URL", "S3_", "SQS_", "SNS_"))}
        env.update(
            LISTEN_ADDR=f"127.0.0.1:{self.api_port}",
            METRICS_ADDR="127.0.0.1:0",
            WEBHOOK_URL=events.url,
            LOG_FORMAT="json",
            # The per-key rate limit (20/s by default) is policy, not capacity:
            # lifted so the benchmark measures the pipeline.
            RATE_LIMIT_PER_SECOND="1000000",
            RATE_LIMIT_BURST="1000000",
            SHUTDOWN_DEADLINE_SECS="10",
            RUST_BACKTRACE="1",
        )
        for name in ("PRESETS", "WORKER_CONCURRENCY", "STORAGE_DIR", "DATA_DIR"):
            env.pop(name, None)
        for setting in args.env:
            name, _, value = setting.partition("=")
            env[name] = value
        if backend == "aws":
            assert moto is not None
            env.update(self._aws_resources(moto))
            if args.quick:
                # Short long polls, so the pauses after worker restarts (below) are short too.
                env["QUEUE_WAIT_SECS"] = "1"
        self.queue_wait = int(env.get("QUEUE_WAIT_SECS", "20"))
        self.env = env
        # Each named database is made and migrated on first use, with its own
        # API key: "main", and the fresh and full ones of the tiny runs.
        self.keys: dict[str, str | None] = {}
        self.databases: list[str] = []
        self.run_id = uuid.uuid4().hex[:10]
        self.use_database("main")

    def use_database(self, name: str) -> None:
        """Points every process started from now on at database `name`
        (embedded: its own DATA_DIR), creating and migrating it on first use.
        Running processes are stopped."""
        self.stop_workers()
        self.stop_api()
        if self.backend == "embedded":
            self.data_dir = self.work / ("data" if name == "main" else f"data-{name}")
            # `migrate` does not create DATA_DIR (only `api`/`worker`/`run` do).
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.env["DATA_DIR"] = str(self.data_dir)
        else:
            self.database = f"bench_{self.run_id}_{name.replace('-', '_')}"
            if self.database not in self.databases:
                psql(f"{self.pg}/postgres", f"CREATE DATABASE {self.database}")
                self.databases.append(self.database)
            self.env["DATABASE_URL"] = f"{self.pg}/{self.database}"
        if name not in self.keys:
            self.run_cli(["migrate", "up"], check=True)
            self.keys[name] = self._create_key()
        self.key = self.keys[name]
        self.api = Api(self.api_port, self.key)

    def _aws_resources(self, moto: Moto) -> dict[str, str]:
        import boto3

        aws = dict(Moto.CREDENTIALS)
        kms = boto3.client("kms", endpoint_url=moto.url)
        self.s3 = boto3.client("s3", endpoint_url=moto.url)
        sqs = boto3.client("sqs", endpoint_url=moto.url)
        sns = boto3.client("sns", endpoint_url=moto.url)
        run = uuid.uuid4().hex[:8]
        key_arn = kms.create_key(Description="bench")["KeyMetadata"]["Arn"]
        self.bucket = f"bench-{run}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_encryption(
            Bucket=self.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        dlq_url = sqs.create_queue(QueueName=f"bench-dlq-{run}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=f"bench-{run}",
            Attributes={
                "VisibilityTimeout": "120",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
            },
        )["QueueUrl"]
        topic_arn = sns.create_topic(Name=f"bench-{run}")["TopicArn"]
        # A subscriber, as in a deployment: the emulator fans each event out to a queue.
        tap_url = sqs.create_queue(QueueName=f"bench-events-{run}")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=tap_arn, Attributes={"RawMessageDelivery": "true"})
        self.tap_url, self.sqs = tap_url, sqs
        return dict(
            aws,
            AWS_ENDPOINT_URL=moto.url,
            S3_BUCKET=self.bucket,
            S3_KMS_KEY_ID=key_arn,
            SQS_QUEUE_URL=queue_url,
            SQS_DLQ_URL=dlq_url,
            SNS_TOPIC_ARN=topic_arn,
        )

    def run_cli(self, argv: list[str], check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [self.args.bin, *argv], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"image-service {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done

    def _create_key(self) -> str | None:
        done = self.run_cli(["keys", "create", "--name", "bench", "--scope", "client"])
        key = done.stdout.strip().splitlines()[-1].strip() if done.stdout.strip() else ""
        if done.returncode != 0 or not key:
            log(f"{self.backend}: `image-service keys create` unavailable (exit {done.returncode}); no auth header")
            return None
        log(f"{self.backend}: created an API key ({key[:6]}...)")
        return key

    # processes

    def start_api(self) -> None:
        self.stop_api()
        log_file = open(self.work / f"api-{self.backend}.log", "ab")
        self.api_proc = subprocess.Popen([self.args.bin, "api"], env=self.env, stdout=log_file, stderr=log_file)
        wait_http(f"http://127.0.0.1:{self.api_port}/healthz", 60, self.api_proc)

    def stop_api(self) -> None:
        if self.api_proc is not None:
            stop(self.api_proc, 15)
            self.api_proc = None

    def start_workers(self, processes: int, concurrency: int | None) -> None:
        """Starts the workers; `concurrency` None leaves WORKER_CONCURRENCY to its default."""
        self.stop_workers()
        env = dict(self.env)
        if concurrency is not None:
            env["WORKER_CONCURRENCY"] = str(concurrency)
        for i in range(processes):
            path = self.work / f"worker-{self.backend}-{len(self.worker_logs)}.log"
            self.worker_logs.append(path)
            log_file = open(path, "wb")
            proc = subprocess.Popen([self.args.bin, "worker"], env=env, stdout=log_file, stderr=log_file)
            self.workers.append(proc)
            deadline = time.time() + 60
            while b"worker started" not in path.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}; see {path}")
                if time.time() > deadline:
                    raise RuntimeError(f"worker did not start; see {path}")
                time.sleep(0.05)
            started = re.search(rb'"concurrency":\s*(\d+)', path.read_bytes())
            self.slots = int(started.group(1)) if started else concurrency

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop(proc, 15)
        if self.workers and self.backend == "aws":
            # A worker stopped during a long poll abandons the request, but the
            # emulator still completes it: the messages it hands to the closed
            # connection stay invisible for the visibility timeout (120 s). Let
            # such polls run out before the next batch.
            time.sleep(self.queue_wait + 1)
        self.workers = []

    def pids(self) -> dict[str, list[int]]:
        pids = {"api": [self.api_proc.pid] if self.api_proc else [], "worker": [p.pid for p in self.workers]}
        if self.moto:
            pids["emulator"] = [self.moto.proc.pid]
        pids["harness"] = [os.getpid()]
        return pids

    def clear_objects(self) -> None:
        """Deletes stored originals and variants between photo batches (disk/emulator memory)."""
        if self.backend == "embedded":
            objects = self.data_dir / "objects"
            for sub in ("originals", "variants"):
                if (objects / sub).is_dir():
                    trash = self.work / f"trash-{uuid.uuid4().hex[:8]}"
                    (objects / sub).rename(trash)
                    shutil.rmtree(trash, ignore_errors=True)
            return
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        try:
            self.sqs.purge_queue(QueueUrl=self.tap_url)
        except Exception:  # noqa: BLE001 (purge is rate-limited; not needed for correctness)
            pass

    def close(self) -> None:
        self.stop_workers()
        self.stop_api()
        if not self.args.keep:
            for database in self.databases:
                psql(f"{self.pg}/postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def psql(url: str, sql: str) -> str:
    done = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout


# --- load -------------------------------------------------------------------


class Problems:
    """Jobs that were lost, failed, or never announced, over the whole run."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        log("PROBLEM: " + text)
        self.items.append(text)


PROBLEMS = Problems()


def settle(stack: Stack, events: Events, label: str, jobs: list[str], timeout: float) -> dict:
    """Waits for every job's event; checks the ones without one against the API."""
    got = events.wait(jobs, timeout)
    failed = [j for j, (_, status, _) in got.items() if status != "succeeded"]
    missing = [j for j in jobs if j not in got]
    lost, silent = [], []
    for j in missing:
        status = stack.api.job(j).get("status")
        (silent if status in ("succeeded", "failed", "dead") else lost).append((j, status))
    for j in failed[:5]:
        detail = stack.api.job(j)
        PROBLEMS.add(f"{stack.backend}/{label}: job {j} ended {detail.get('status')}: {detail.get('error')}")
    if len(failed) > 5:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(failed) - 5} more jobs failed")
    if lost:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(lost)} of {len(jobs)} jobs unfinished after {timeout:.0f} s, e.g. {lost[:3]}")
    if silent:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(silent)} finished jobs sent no event, e.g. {silent[:3]}")
    return got


def closed_loop(stack: Stack, events: Events, label: str, bodies: list[bytes], n: int, concurrency: int, timeout: float) -> dict:
    """Submits n jobs as fast as `concurrency` uploaders can; measures until the last event."""
    pids = stack.pids()
    cpu0 = {role: sum(cpu_seconds(p) for p in ps) for role, ps in pids.items()}
    moto0 = stack.moto.requests() if stack.moto else 0
    jobs: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def uploader() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                job = stack.api.upload(bodies[i % len(bodies)])
            except Exception as err:  # noqa: BLE001
                with lock:
                    errors.append(str(err))
                continue
            with lock:
                jobs.append(job)

    started = time.perf_counter()
    threads = [threading.Thread(target=uploader) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    uploaded = time.perf_counter()
    for err in errors[:3]:
        PROBLEMS.add(f"{stack.backend}/{label}: upload failed: {err}")
    got = settle(stack, events, label, jobs, timeout)
    last = max((t for t, _, _ in got.values()), default=uploaded)
    seconds = last - started
    cpu1 = {role: sum(cpu_seconds(p) for p in ps) for role, ps in pids.items()}
    done = len(got)
    result = {
        "label": label,
        "jobs": n,
        "events": done,
        "seconds": seconds,
        "upload_seconds": uploaded - started,
        "jobs_per_s": done / seconds if seconds > 0 else float("nan"),
        "cpu_ms_per_job": {role: 1000 * (cpu1[role] - cpu0[role]) / max(done, 1) for role in pids},
    }
    if stack.moto:
        result["emulator_requests"] = stack.moto.requests() - moto0
    return result


def sequential_latency(stack: Stack, events: Events, label: str, body: bytes, n: int) -> dict:
    """One job at a time: upload, wait for its event, next."""
    latencies, queued, processing = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        job = stack.api.upload(body)
        got = events.wait([job], 120)
        if job not in got:
            settle(stack, events, label, [job], 0)
            continue
        arrived, status, timings = got[job]
        if status != "succeeded":
            settle(stack, events, label, [job], 0)
        latencies.append(1000 * (arrived - t0))
        queued.append(timings.get("queued_ms", float("nan")))
        processing.append(timings.get("processing_ms", float("nan")))
    return {
        "label": label,
        "jobs": n,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "queued_p50_ms": median(queued),
        "processing_p50_ms": median(processing),
    }


def open_loop(stack: Stack, events: Events, label: str, body: bytes, rate: float, duration: float) -> dict:
    """Arrivals at a fixed rate, whatever the answers; latency from each scheduled time."""
    n = max(1, int(rate * duration))
    start = time.perf_counter() + 0.2
    schedule = [start + i / rate for i in range(n)]
    sent: list[tuple[str, float]] = []
    late: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def sender() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            wait = schedule[i] - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                with lock:
                    late.append(-wait)
            try:
                job = stack.api.upload(body)
            except Exception as err:  # noqa: BLE001
                PROBLEMS.add(f"{stack.backend}/{label}: upload failed: {err}")
                continue
            with lock:
                sent.append((job, schedule[i]))

    threads = [threading.Thread(target=sender) for _ in range(min(64, n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sending = time.perf_counter() - start
    got = settle(stack, events, label, [j for j, _ in sent], 120)
    latencies = [1000 * (got[j][0] - t) for j, t in sent if j in got]
    return {
        "label": label,
        "rate": rate,
        "jobs": n,
        "achieved_rate": len(sent) / sending if sending > 0 else float("nan"),
        "late_sends": len(late),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def burst_memory(stack: Stack, body: bytes, warm: bytes, n: int, concurrency: int) -> dict:
    """A fresh API process takes n uploads of `body`, `concurrency` at a time."""
    stack.start_api()
    pid = stack.api_proc.pid
    for _ in range(3):
        stack.api.upload(warm)  # connections, pools and the allocator warmed alike for both bursts
    baseline = status_kib(pid, "VmRSS")
    counter = iter(range(n))
    lock = threading.Lock()
    peak_sample = [0]

    def uploader() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                stack.api.upload(body)
            except Exception as err:  # noqa: BLE001
                PROBLEMS.add(f"{stack.backend}/memory: upload failed: {err}")

    def sampler(stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            peak_sample[0] = max(peak_sample[0], status_kib(pid, "VmRSS"))
            time.sleep(0.01)

    stop_event = threading.Event()
    threading.Thread(target=sampler, args=(stop_event,), daemon=True).start()
    started = time.perf_counter()
    threads = [threading.Thread(target=uploader) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    stop_event.set()
    return {
        "bytes": len(body),
        "uploads": n,
        "concurrency": concurrency,
        "seconds": seconds,
        "baseline_rss_kib": baseline,
        "vmhwm_kib": status_kib(pid, "VmHWM"),
        "sampled_peak_rss_kib": peak_sample[0],
    }


# --- the engine alone ------------------------------------------------------


class Engine:
    """The engine's bench binary (imaging/examples/bench.rs)."""

    def __init__(self, path: str | None, probe_file: Path) -> None:
        self.path = path if path and os.access(path, os.X_OK) else None
        self.presets_mode = False
        self.note = ""
        if not self.path:
            self.note = "bench binary not found (BENCH_BIN); engine figures skipped"
            return
        done = subprocess.run(
            [self.path, "presets", "--concurrency", "1", str(probe_file)], capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0 and "RESULT" in done.stdout:
            self.presets_mode = True
            self.note = "`bench presets --concurrency N`: imaging::process with default_presets(), N threads"
        else:
            self.note = (
                "`bench presets` missing: N parallel `bench run --format webp` processes "
                "(the same presets as default_presets(): WebP q80 balanced, 2048/1024/256)"
            )

    @staticmethod
    def _result(stdout: str) -> tuple[int, float]:
        match = re.search(r"^RESULT .*images=(\d+) seconds=([0-9.]+)", stdout, re.M)
        if not match:
            raise RuntimeError(f"no RESULT line in bench output: {stdout[-500:]}")
        return int(match.group(1)), float(match.group(2))

    def throughput(self, files: list[Path], concurrency: int) -> float:
        """Images per second over `files` (repeats allowed) at `concurrency`."""
        if not self.path:
            return float("nan")
        if self.presets_mode:
            done = subprocess.run(
                [self.path, "presets", "--concurrency", str(concurrency), *map(str, files)],
                capture_output=True, text=True, timeout=3600, check=True,
            )
            images, seconds = self._result(done.stdout)
            return images / seconds
        shares = [files[i::concurrency] for i in range(concurrency)]
        procs = [
            subprocess.Popen([self.path, "run", "--format", "webp", *map(str, share)], stdout=subprocess.PIPE, text=True)
            for share in shares
            if share
        ]
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"bench run exited with {proc.returncode}")
            results.append(self._result(out))
        # The processes read their inputs first and then time their own pass;
        # the passes overlap, so the slowest one bounds the wall time.
        return sum(i for i, _ in results) / max(s for _, s in results)

    def seconds_per_image(self, file: Path, repeats: int) -> float:
        rate = self.throughput([file] * repeats, 1)
        return 1.0 / rate if rate == rate else float("nan")


# --- pre-filling the tables -------------------------------------------------


TS_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)([ T])(\d\d):(\d\d):(\d\d)(\.\d+)?")


def shift_timestamp(value, seconds: int):
    """The same timestamp `seconds` earlier, in the same representation."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return value - seconds * 1000
    if isinstance(value, str):
        match = TS_RE.search(value)
        if not match:
            return value
        y, mo, d, sep, h, mi, s, frac = match.groups()
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)) - timedelta(seconds=seconds)
        text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (frac or "")
        return value[: match.start()] + text + value[match.end():]
    return value


def uuid7_bytes(ms: int) -> bytes:
    rand = random.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return value.to_bytes(16, "big")


def new_id_like(template, ms: int):
    raw = uuid7_bytes(ms)
    if isinstance(template, bytes):
        return raw
    return str(uuid.UUID(bytes=raw))


def id_text(value) -> str:
    return str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else str(value)


# Columns given new values in every copy; every other column is copied from
# the template job as it is, so columns added later come along.
FRESH_NULL = {"idempotency_key", "request_fingerprint", "replay_of"}


def prefill_sqlite(db_path: Path, target: int) -> int:
    """Copies the newest succeeded job (image, job, variants, audit rows) until `jobs` holds `target` rows."""
    db = sqlite3.connect(db_path, timeout=60)
    db.row_factory = sqlite3.Row
    have = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    need = target - have
    if need <= 0:
        return 0
    job = db.execute(
        "SELECT j.* FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.status = 'succeeded' "
        "ORDER BY i.bytes, j.created_at DESC LIMIT 1"
    ).fetchone()
    image = db.execute("SELECT * FROM images WHERE id = ?", (job["image_id"],)).fetchone()
    variants = db.execute("SELECT * FROM variants WHERE image_id = ?", (job["image_id"],)).fetchall()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    audits = db.execute("SELECT * FROM job_audit WHERE job_id = ?", (job["id"],)).fetchall() if "job_audit" in tables else []
    image_text = id_text(image["id"])
    now_ms = int(time.time() * 1000)

    def copy(row: sqlite3.Row, k: int, image_id, job_id, skip_pk: bool) -> tuple[list[str], tuple]:
        cols, values = [], []
        for col in row.keys():
            value = row[col]
            if col == "id" and skip_pk:
                continue
            if col == "id":
                value = image_id if row is image else job_id
            elif col == "image_id":
                value = image_id
            elif col == "job_id":
                value = job_id
            elif col in FRESH_NULL:
                value = None
            elif col == "sha256":
                value = uuid.uuid4().hex + uuid.uuid4().hex
            elif col in ("source_key", "object_key") and isinstance(value, str):
                value = value.replace(image_text, id_text(image_id))
            elif col.endswith("_at"):
                value = shift_timestamp(value, k)
            cols.append(col)
            values.append(value)
        return cols, tuple(values)

    plan: dict[str, tuple[list[str], list[tuple]]] = {}

    def add(table: str, cols: list[str], values: tuple) -> None:
        plan.setdefault(table, (cols, []))[1].append(values)

    # Copy k is dated k seconds before the first real job (oldest first, as
    # the table would have filled), ids included (UUIDv7 carries the time).
    for k in range(need, 0, -1):
        age = 3600 + k
        image_id, job_id = new_id_like(image["id"], now_ms - 1000 * age), new_id_like(job["id"], now_ms - 1000 * age)
        add("images", *copy(image, age, image_id, job_id, False))
        add("jobs", *copy(job, age, image_id, job_id, False))
        for v in variants:
            add("variants", *copy(v, age, image_id, job_id, True))
        for a in audits:
            add("job_audit", *copy(a, age, image_id, job_id, True))
    with db:
        for table in ("images", "jobs", "variants", "job_audit"):
            if table in plan:
                cols, rows = plan[table]
                names = ", ".join(f'"{c}"' for c in cols)
                marks = ", ".join("?" for _ in cols)
                db.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
    db.execute("ANALYZE")
    db.close()
    return need


def prefill_postgres(url: str, target: int) -> int:
    """The same copies as prefill_sqlite, in one SQL statement per table."""
    have = int(psql(url, "SELECT count(*) FROM jobs").strip())
    need = target - have
    if need <= 0:
        return 0
    template = psql(
        url,
        "SELECT j.id FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.status = 'succeeded' "
        "ORDER BY i.bytes, j.created_at DESC LIMIT 1",
    ).strip()

    def columns(table: str) -> list[tuple[str, str]]:
        out = psql(
            url,
            "SELECT column_name, data_type, coalesce(column_default, '') FROM information_schema.columns "
            f"WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position",
        )
        return [tuple(line.split("|", 2)) for line in out.splitlines() if line]

    def select(table: str, image_or_job: str) -> str:
        cols, exprs = [], []
        for name, data_type, default in columns(table):
            if name == "id" and (data_type != "uuid" or default.startswith("nextval")):
                continue  # a serial or identity key: the database numbers the copies
            q = f't."{name}"'
            if name == "id":
                expr = "p.image_id" if image_or_job == "image" else "p.job_id"
            elif name == "image_id":
                expr = "p.image_id"
            elif name == "job_id":
                expr = "p.job_id"
            elif name in FRESH_NULL:
                expr = "NULL"
            elif name == "sha256":
                expr = "md5(p.image_id::text) || md5(p.job_id::text)"
            elif name in ("source_key", "object_key"):
                expr = f"replace({q}, t0.image_id::text, p.image_id::text)"
            elif name.endswith("_at") and data_type.startswith("timestamp"):
                expr = f"{q} - (3600 + p.n) * interval '1 second'"
            else:
                expr = q
            cols.append(f'"{name}"')
            exprs.append(expr)
        return ", ".join(cols), ", ".join(exprs)

    v7 = (
        "encode(overlay(uuid_send(gen_random_uuid()) placing substring(int8send("
        "(extract(epoch from now()) * 1000)::bigint - 3600000 - g * 1000) from 3) from 1 for 6), 'hex')::uuid"
    )
    statements = [
        "BEGIN",
        f"CREATE TEMP TABLE prefill AS SELECT g AS n, {v7} AS image_id, {v7} AS job_id "
        f"FROM generate_series({need}, 1, -1) g",
        f"CREATE TEMP TABLE t0 AS SELECT * FROM jobs WHERE id = '{template}'",
    ]
    for table, kind, where in (
        ("images", "image", "t.id = t0.image_id"),
        ("jobs", "job", "t.id = t0.id"),
        ("variants", "image", "t.image_id = t0.image_id"),
        ("job_audit", "job", "t.job_id = t0.id"),
    ):
        if not columns(table):
            continue
        cols, exprs = select(table, kind)
        statements.append(f'INSERT INTO "{table}" ({cols}) SELECT {exprs} FROM prefill p, t0, "{table}" t WHERE {where}')
    statements += ["COMMIT", "ANALYZE"]
    psql(url, "; ".join(statements))
    return need


# --- the run ---------------------------------------------------------------


def noise_jpeg(rng: random.Random, at_least: int) -> bytes:
    """A JPEG of random pixels (incompressible) of at least `at_least` bytes."""
    from PIL import Image

    side = 600
    while True:
        noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buf = io.BytesIO()
        noise.save(buf, "JPEG", quality=92)
        if buf.tell() >= at_least:
            return buf.getvalue()
        side = int(side * max(1.05, (at_least / buf.tell()) ** 0.5))


def make_images(out: Path) -> tuple[bytes, bytes, bytes]:
    """A 64x64 photo-like JPEG, and JPEGs of about 2 MB and 8 MB."""
    from PIL import Image, ImageFilter  # noqa: F401 (Image used below)

    rng = random.Random(10)
    tiny = Image.new("RGB", (64, 64))
    tiny.putdata([(x * 4, y * 4, (x * y) % 256) for y in range(64) for x in range(64)])
    tiny = tiny.filter(ImageFilter.GaussianBlur(1))
    buf = io.BytesIO()
    tiny.save(buf, "JPEG", quality=85)
    tiny_bytes = buf.getvalue()
    big_bytes = noise_jpeg(rng, 2_000_000)
    huge_bytes = noise_jpeg(rng, 8_000_000)
    (out / "tiny.jpg").write_bytes(tiny_bytes)
    (out / "upload-2mb.jpg").write_bytes(big_bytes)
    (out / "upload-8mb.jpg").write_bytes(huge_bytes)
    return tiny_bytes, big_bytes, huge_bytes


def job_budget_mib(args) -> tuple[float, str]:
    """The engine's per-job memory budget: imaging::Limits::default().max_alloc_bytes."""
    if args.job_budget_mib:
        return args.job_budget_mib, "--job-budget-mib"
    source = (ROOT / "imaging/src/lib.rs").read_text()
    match = re.search(r"max_alloc_bytes:\s*([0-9_ *]+),", source)
    if match:
        value = 1
        for factor in match.group(1).replace("_", "").split("*"):
            value *= int(factor.strip())
        return value / MIB, "imaging::Limits::default().max_alloc_bytes"
    return 512.0, "assumed (imaging::Limits not readable)"


def emulator_burst(moto: Moto, calls: int) -> dict:
    """Raw calls straight to the emulator, one at a time: its own request rate."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto.url)
    s3 = boto3.client("s3", endpoint_url=moto.url)
    queue = sqs.create_queue(QueueName=f"bench-raw-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bucket = f"bench-raw-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    rates = {}
    t0 = time.perf_counter()
    for i in range(calls):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"i": i}))
    rates["sqs_send"] = calls / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    receipts = []
    for _ in range(calls):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages", [])
        receipts += [m["ReceiptHandle"] for m in got]
    rates["sqs_receive"] = calls / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for receipt in receipts:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)
    rates["sqs_delete"] = len(receipts) / max(time.perf_counter() - t0, 1e-9)
    body = b"x" * 4096
    t0 = time.perf_counter()
    for i in range(calls):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=body)
    rates["s3_put_4k"] = calls / (time.perf_counter() - t0)
    return rates


def start_tiny(stack: Stack, events: Events, args, tiny: bytes) -> None:
    """Starts the API and one worker as the tiny runs use them, and warms them up.

    The tiny runs measure the worker as it is deployed: its default
    WORKER_CONCURRENCY unless --tiny-slots sets one."""
    stack.start_api()
    stack.start_workers(1, args.tiny_slots)
    closed_loop(stack, events, "warm-up", [tiny], 10, 2, 60)


def prefill(stack: Stack, events: Events, args, tiny: bytes) -> dict:
    """Fills the current database to `args.rows` jobs (its warm-up jobs are the template)."""
    t0 = time.perf_counter()
    if args.prefill == "sql":
        log(f"{stack.backend}: pre-filling the tables to {args.rows} jobs by SQL")
        if stack.backend == "embedded":
            added = prefill_sqlite(stack.data_dir / "image-service.db", args.rows)
        else:
            added = prefill_postgres(f"{stack.pg}/{stack.database}", args.rows)
    else:
        added = max(0, args.rows - count_jobs(stack))
        log(f"{stack.backend}: pre-filling the tables to {args.rows} jobs by running {added} tiny jobs")
        closed_loop(stack, events, "prefill", [tiny], added, args.upload_concurrency, 3600)
    return {"how": args.prefill, "added": added, "seconds": time.perf_counter() - t0}


def run_backend(
    backend: str, args, work: Path, events: Events, engine: Engine, photos: list[Path], tiny: bytes, big: bytes, huge: bytes
) -> dict:
    out: dict = {"backend": backend}
    moto = Moto(args.moto_server, work) if backend == "aws" else None
    try:
        stack = Stack(backend, args, work, events, moto)
    except BaseException:
        if moto:
            moto.close()
        raise
    out["auth"] = "api key (Bearer)" if stack.key else "none (`keys create` unavailable)"
    q = args.quick
    try:
        # 2. overhead on tiny images: fresh tables against full ones, as
        # interleaved pairs of runs so that the machine's moods hit both alike.
        # Each fresh run has a new database; the full one is filled once.
        stack.use_database("full")
        start_tiny(stack, events, args, tiny)
        if moto:
            log(f"{backend}: timing raw emulator calls on a fresh emulator")
            out["emulator_raw_start"] = emulator_burst(moto, 50 if q else 200)
        out["prefill"] = prefill(stack, events, args, tiny)
        out["tiny_pairs"] = []
        # The emulator runs tiny jobs at a few per second: one pair there.
        tiny_rounds = args.tiny_rounds or (1 if q or backend == "aws" else 3)
        for rnd in range(tiny_rounds):
            pair = {}
            for kind in ("fresh", "full") if rnd % 2 == 0 else ("full", "fresh"):
                stack.use_database(f"fresh-{rnd}" if kind == "fresh" else "full")
                start_tiny(stack, events, args, tiny)
                rows = count_jobs(stack)
                log(f"{backend}: tiny round {rnd + 1}/{tiny_rounds}: {args.tiny_jobs} jobs on {kind} tables ({rows} jobs)")
                if moto:
                    # The emulator slows as it holds more objects: every run
                    # starts with it as empty as the first.
                    stack.clear_objects()
                pair[kind] = closed_loop(stack, events, f"tiny-{kind}", [tiny], args.tiny_jobs, args.upload_concurrency, 300)
                pair[kind]["rows_before"] = rows
            out["tiny_pairs"].append(pair)
        out["tiny_slots"] = stack.slots
        out["rows_after_prefill"] = out["tiny_pairs"][0]["full"]["rows_before"]
        # The run of each kind with the median rate stands for it in the CPU rows.
        for kind, key in (("fresh", "tiny_first"), ("full", "tiny_full")):
            runs = sorted((p[kind] for p in out["tiny_pairs"]), key=lambda r: r["jobs_per_s"])
            out[key] = runs[len(runs) // 2]

        # 3. latency on tiny images
        stack.use_database("main")
        start_tiny(stack, events, args, tiny)
        log(f"{backend}: latency, one job at a time ({args.latency_jobs} jobs)")
        out["latency_seq"] = sequential_latency(stack, events, "latency-seq", tiny, args.latency_jobs)
        rate = 0.8 * median([p["fresh"]["jobs_per_s"] for p in out["tiny_pairs"]])
        if not rate > 0:
            rate = 1.0
        log(f"{backend}: latency, open loop at {rate:.0f} jobs/s for {args.open_loop_seconds:.0f} s")
        out["latency_open"] = open_loop(stack, events, "latency-open", tiny, rate, args.open_loop_seconds)
        photo = photos[LARGE.index("kleiber")] if len(photos) == len(LARGE) else photos[0]
        log(f"{backend}: latency of one 20 MP photo, one job at a time ({args.photo_latency_jobs} jobs)")
        out["latency_photo"] = sequential_latency(stack, events, "latency-photo", photo.read_bytes(), args.photo_latency_jobs)

        # 1 and 4. photos: engine alone and three worker layouts, interleaved per round
        bodies = [p.read_bytes() for p in photos]
        files = [photos[i % len(photos)] for i in range(args.photo_jobs)]
        layouts = [("1x2", 1, 2), ("1x1", 1, 1), ("2x1", 2, 1)]
        out["photos"] = {name: [] for name, _, _ in layouts}
        out["engine_c2"] = []
        out["worker_hwm_kib"] = {name: 0 for name, _, _ in layouts}
        for rnd in range(args.rounds):
            log(f"{backend}: photos round {rnd + 1}/{args.rounds}: engine alone, {args.photo_jobs} images at concurrency 2")
            out["engine_c2"].append(engine.throughput(files, 2))
            for name, procs, conc in layouts:
                stack.start_workers(procs, conc)
                log(f"{backend}: photos round {rnd + 1}: {procs} worker process(es) x {conc} slot(s), {args.photo_jobs} jobs")
                result = closed_loop(stack, events, f"photos-{name}", bodies, args.photo_jobs, 4, 600 + 10 * args.photo_jobs)
                result["worker_hwm_kib"] = [status_kib(p.pid, "VmHWM") for p in stack.workers]
                out["worker_hwm_kib"][name] = max([out["worker_hwm_kib"][name], *result["worker_hwm_kib"]])
                out["photos"][name].append(result)
                stack.stop_workers()
                stack.clear_objects()

        # engine time for the latency images
        out["engine_tiny_ms"] = 1000 * engine.seconds_per_image(work / "tiny.jpg", 200 if not q else 50)
        out["engine_photo_ms"] = 1000 * engine.seconds_per_image(photo, 3 if not q else 1)

        # 5. API memory: small uploads, then 2 MB uploads, each on a fresh API process, no worker
        log(f"{backend}: API memory: {args.burst} small uploads, {args.burst_concurrency} at a time")
        out["api_small"] = burst_memory(stack, tiny, tiny, args.burst, args.burst_concurrency)
        log(f"{backend}: API memory: {args.burst} uploads of {len(big) / 1e6:.1f} MB, {args.burst_concurrency} at a time")
        out["api_big"] = burst_memory(stack, big, tiny, args.burst, args.burst_concurrency)
        # Peak memory follows the uploads in flight, not their count: fewer 8 MB ones do.
        huge_n = max(args.burst_concurrency, args.burst // 4)
        log(f"{backend}: API memory: {huge_n} uploads of {len(huge) / 1e6:.1f} MB, {args.burst_concurrency} at a time")
        out["api_huge"] = burst_memory(stack, huge, tiny, huge_n, args.burst_concurrency)

        if moto:
            log(f"{backend}: timing raw emulator calls at the end")
            out["emulator_raw"] = emulator_burst(moto, 50 if q else 200)
    finally:
        stack.close()
        if moto:
            moto.close()
    return out


def count_jobs(stack: Stack) -> int:
    if stack.backend == "embedded":
        db = sqlite3.connect(stack.data_dir / "image-service.db", timeout=60)
        try:
            return db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        finally:
            db.close()
    return int(psql(f"{stack.pg}/{stack.database}", "SELECT count(*) FROM jobs").strip())


# --- the report ------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:.{digits}f}"


def spread(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if v == v]
    if len(values) < 2:
        return ""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def verdict(ok) -> str:
    if ok is None:
        return "n/a"
    return "met" if ok else "MISSED"


def report(results: list[dict], args, budget: tuple[float, str], engine: Engine) -> str:
    lines = []
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(backend, figure, value, runs="", target="", ok=None):
        rows.append((backend, figure, value, runs, target, verdict(ok) if target else ""))

    for r in results:
        b = r["backend"]
        p = r["photos"]
        med = {name: median([x["jobs_per_s"] for x in p[name]]) for name in p}
        eng = median(r["engine_c2"])
        row(b, "photos: pipeline jobs/s, 1 worker x 2 slots", fmt(med["1x2"], 2), spread([x["jobs_per_s"] for x in p["1x2"]]))
        row(b, "photos: engine alone img/s, concurrency 2", fmt(eng, 2), spread(r["engine_c2"]))
        ratio = med["1x2"] / eng if eng == eng and eng > 0 else float("nan")
        row(b, "photos: pipeline / engine", fmt(100 * ratio, 0) + "%", "", ">= 90%", None if ratio != ratio else ratio >= 0.9)
        for name in ("1x2", "1x1", "2x1"):
            cpu = p[name][-1]["cpu_ms_per_job"]
            emu = f" / {fmt(cpu['emulator'], 0)}" if "emulator" in cpu else ""
            row(b, f"photos {name}: CPU ms/job api / worker(s){' / emulator' if emu else ''}",
                f"{fmt(cpu['api'], 1)} / {fmt(cpu['worker'], 0)}{emu}", f"harness {fmt(cpu['harness'], 1)}")
        t1, t2, pairs = r["tiny_first"], r["tiny_full"], r["tiny_pairs"]
        fresh = [x["fresh"]["jobs_per_s"] for x in pairs]
        full = [x["full"]["jobs_per_s"] for x in pairs]
        row(b, f"tiny: jobs/s, first {t1['jobs']} jobs", fmt(median(fresh), 0), " / ".join(fmt(x, 0) for x in fresh),
            ">= 300", median(fresh) >= 300)
        row(b, f"tiny: jobs/s, {t2['jobs']} jobs at {r['rows_after_prefill']} rows", fmt(median(full), 0),
            " / ".join(fmt(x, 0) for x in full), ">= 300", median(full) >= 300)
        # Each pair ran back to back, so its ratio is the comparison; the
        # median of the ratios is the figure.
        changes = [x["full"]["jobs_per_s"] / x["fresh"]["jobs_per_s"] - 1 for x in pairs]
        change = median(changes)
        row(b, "tiny: jobs/s change, full vs fresh tables", f"{100 * change:+.0f}%",
            "pairs " + " / ".join(f"{100 * c:+.0f}%" for c in changes), "within +-10%", abs(change) <= 0.10)
        for label, t in (("fresh", t1), ("full", t2)):
            cpu = t["cpu_ms_per_job"]
            extra = f" / {fmt(cpu['emulator'], 2)}" if "emulator" in cpu else ""
            row(b, f"tiny ({label}): CPU ms/job api / worker{' / emulator' if extra else ''}",
                f"{fmt(cpu['api'], 2)} / {fmt(cpu['worker'], 2)}{extra}", f"harness {fmt(cpu['harness'], 2)}")
        row(b, "tiny: rows pre-filled", f"{r['prefill']['added']} by {r['prefill']['how']}", f"{r['prefill']['seconds']:.1f} s")
        ls, lo, lp = r["latency_seq"], r["latency_open"], r["latency_photo"]
        et, ep = r["engine_tiny_ms"], r["engine_photo_ms"]
        row(b, "latency tiny, 1 at a time: p50 / p99 ms", f"{fmt(ls['p50_ms'])} / {fmt(ls['p99_ms'])}",
            f"queued {fmt(ls['queued_p50_ms'], 0)} + processing {fmt(ls['processing_p50_ms'], 0)}",
            f"p50 <= engine {fmt(et, 1)} + 50", None if et != et else ls["p50_ms"] <= et + 50)
        row(b, f"latency tiny, open loop {fmt(lo['rate'], 0)}/s (80%): p50 / p99 ms", f"{fmt(lo['p50_ms'])} / {fmt(lo['p99_ms'])}",
            f"sent {fmt(lo['achieved_rate'], 0)}/s, {lo['late_sends']} late")
        row(b, "latency 20 MP photo, 1 at a time: p50 / p99 ms", f"{fmt(lp['p50_ms'], 0)} / {fmt(lp['p99_ms'], 0)}",
            f"queued {fmt(lp['queued_p50_ms'], 0)} + processing {fmt(lp['processing_p50_ms'], 0)}",
            f"p50 <= engine {fmt(ep, 0)} + 50", None if ep != ep else lp["p50_ms"] <= ep + 50)
        scale = med["2x1"] / med["1x1"] if med["1x1"] > 0 else float("nan")
        row(b, "scaling: jobs/s 1x1 / 2x1 / 1x2", f"{fmt(med['1x1'], 2)} / {fmt(med['2x1'], 2)} / {fmt(med['1x2'], 2)}",
            f"1x2/1x1 {fmt(med['1x2'] / med['1x1'], 2)}x")
        row(b, "scaling: 2 worker processes vs 1", f"{fmt(scale, 2)}x", "", ">= 1.8x", scale >= 1.8)
        limit = 2 * budget[0] + 64
        hwm = r["worker_hwm_kib"]["1x2"] / 1024
        row(b, "memory: worker VmHWM, 2 slots (MiB)", fmt(hwm, 0), f"1 slot: {fmt(r['worker_hwm_kib']['1x1'] / 1024, 0)}",
            f"<= 2 x {budget[0]:.0f} + 64 = {limit:.0f}", hwm <= limit)
        small, big, huge = r["api_small"], r["api_big"], r["api_huge"]
        mib = {k: x["vmhwm_kib"] / 1024 for k, x in (("small", small), ("big", big), ("huge", huge))}
        conc = big["concurrency"]
        # Whole bodies held in memory would add all the bytes in flight; a
        # quarter of them is the line. Flat in upload size: 8 MB uploads over
        # 2 MB ones; the brief's comparison: 2 MB uploads over small ones.
        allow_big = conc * (big["bytes"] - small["bytes"]) / MIB / 4
        allow_huge = conc * (huge["bytes"] - big["bytes"]) / MIB / 4
        growth_big, growth_huge = mib["big"] - mib["small"], mib["huge"] - mib["big"]
        row(b, "memory: API VmHWM, bursts of small / 2 MB / 8 MB uploads (MiB)",
            f"{fmt(mib['small'], 0)} / {fmt(mib['big'], 0)} / {fmt(mib['huge'], 0)}",
            f"{small['uploads']} / {big['uploads']} / {huge['uploads']} uploads, {conc} at a time")
        row(b, "memory: API growth, 2 MB burst over small", f"{growth_big:+.1f} MiB",
            f"{growth_big / conc:.2f} MiB per upload in flight", f"< {allow_big:.0f} MiB (1/4 in flight)", growth_big < allow_big)
        row(b, "memory: API growth, 8 MB burst over 2 MB", f"{growth_huge:+.1f} MiB",
            "flat in upload size?", f"< {allow_huge:.0f} MiB (1/4 in flight)", growth_huge < allow_huge)
        for key, when in (("emulator_raw_start", "fresh"), ("emulator_raw", "at the end")):
            if key in r:
                raw = r[key]
                row(b, f"emulator ({when}): raw calls/s SQS send / receive / delete / S3 put",
                    " / ".join(fmt(raw[k], 0) for k in ("sqs_send", "sqs_receive", "sqs_delete", "s3_put_4k")),
                    "1 boto3 client, 1 call at a time")
        if "emulator_raw" in r:
            for label, t in (("tiny (fresh)", t1), ("tiny (full)", t2), ("photos 1x2", p["1x2"][-1])):
                reqs = t.get("emulator_requests", 0)
                cpu = t["cpu_ms_per_job"]
                share = cpu["emulator"] / (cpu["emulator"] + cpu["api"] + cpu["worker"])
                row(b, f"emulator: requests/job, {label}", f"{reqs / max(t['events'], 1):.1f}",
                    f"{reqs / t['seconds']:.0f} req/s; {100 * share:.0f}% of service CPU")

    head = ("backend", "figure", "value (median)", "runs / detail", "target", "met?")
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for r_ in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r_, widths)).rstrip())
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the image-service binary")
    parser.add_argument("--bench-bin", default=os.environ.get("BENCH_BIN"), help="imaging's bench example binary")
    parser.add_argument("--moto-server", default=str(ROOT / ".venv/test/bin/moto_server"))
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--corpus", default=os.environ.get("CORPUS"))
    parser.add_argument("--backends", default="embedded,aws")
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI (< 2 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds of the photo runs (median over them); default 3, quick 1")
    parser.add_argument("--photo-jobs", type=int, help="jobs per photo run; default 104 (13 x 8), quick 8")
    parser.add_argument("--photo-latency-jobs", type=int, help="default 10, quick 2")
    parser.add_argument("--tiny-jobs", type=int, help="jobs per tiny run; default 1000, quick 100")
    parser.add_argument("--rows", type=int, help="jobs in the full tables of the tiny runs; default 50000, quick 2000")
    parser.add_argument("--tiny-rounds", type=int,
                        help="pairs of tiny runs, fresh and full tables back to back; default 3 (embedded), 1 (aws), quick 1")
    parser.add_argument("--prefill", choices=["sql", "jobs"], default="sql")
    parser.add_argument("--latency-jobs", type=int, help="one-at-a-time latency jobs; default 200, quick 20")
    parser.add_argument("--open-loop-seconds", type=float, help="default 15, quick 3")
    parser.add_argument("--upload-concurrency", type=int, default=8)
    parser.add_argument("--tiny-slots", type=int,
                        help="WORKER_CONCURRENCY for the tiny and latency runs; default: the worker's own default")
    parser.add_argument("--burst", type=int, help="uploads per API memory burst; default 200, quick 16")
    parser.add_argument("--burst-concurrency", type=int, default=16)
    parser.add_argument("--job-budget-mib", type=float, help="override the per-job memory budget")
    parser.add_argument("--out", help="scratch directory (kept); default a new temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the Postgres databases")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting for every image-service process (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--build-label", help="how the binary was built, for the report (default: from its path)")
    args = parser.parse_args()
    defaults = dict(rounds=(1, 3), photo_jobs=(8, 104), photo_latency_jobs=(2, 10), tiny_jobs=(100, 1000),
                    rows=(2000, 50000), latency_jobs=(20, 200), open_loop_seconds=(3.0, 15.0), burst=(16, 200))
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)

    corpus = Path(args.corpus) if args.corpus else next(
        (p for p in (ROOT.parent / "shared/corpus", Path("/work/shared/corpus")) if p.is_dir()), ROOT.parent / "shared/corpus"
    )
    photos = [corpus / f"{name}.jpg" for name in LARGE]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing and args.quick:
        # A clone without the shared corpus: the smoke runs on the one large
        # photo the repository carries.
        print(f"bench-pipeline: corpus not found at {corpus}; the smoke uses testdata/kleiber.jpg", flush=True)
        photos = [ROOT / "testdata/kleiber.jpg"]
    elif missing:
        sys.exit(f"bench-pipeline: corpus photos missing: {missing} (set CORPUS)")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    tiny, big, huge = make_images(work)
    budget = job_budget_mib(args)
    engine = Engine(args.bench_bin, work / "tiny.jpg")
    events = Events()
    build = args.build_label or next(
        (f"{kind} build" for kind in ("debug", "release") if f"/{kind}/" in str(Path(args.bin).resolve())), "build unknown"
    )
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"binary {args.bin} ({version}, {build}); engine: {engine.note}; work dir {work}")

    started = time.time()
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        results.append(run_backend(backend, args, work, events, engine, photos, tiny, big, huge))
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    events.close()

    print()
    print(f"Pipeline benchmark (issue #10): {version}, {build}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, {'quick' if args.quick else 'full'} run "
          f"in {time.time() - started:.0f} s")
    print(f"api + worker as separate processes; photos: {args.photo_jobs} jobs over the 8 large corpus photos, "
          f"{args.rounds} round(s), default presets; tiny: 64x64 JPEG, {args.tiny_jobs} jobs, {args.upload_concurrency} uploaders, "
          f"pairs of fresh and full runs: " + ", ".join(f"{r['backend']} {len(r['tiny_pairs'])}" for r in results) + "; "
          f"worker slots: " + ", ".join(f"{r['backend']} {r.get('tiny_slots')}" for r in results))
    print(f"engine alone: {engine.note}")
    if args.env:
        print(f"extra settings: {' '.join(args.env)}")
    print(f"per-job memory budget: {budget[0]:.0f} MiB ({budget[1]}); auth: "
          + ", ".join(f"{r['backend']} {r['auth']}" for r in results))
    print()
    print(report(results, args, budget, engine))
    print()
    lost = len(PROBLEMS.items)
    print(f"problems: {lost}" + ("" if not lost else "\n  " + "\n  ".join(PROBLEMS.items)))
    print(f"logs and results.json: {work}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
