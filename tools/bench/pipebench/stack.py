"""One backend set: its settings, databases, API process and worker processes."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

from harness import procs
from harness.ports import free_port

from .client import Api
from .common import log
from .emulator import Moto
from .events import Events


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
            TENANT_RATE_LIMIT_PER_SECOND="1000000",
            TENANT_RATE_LIMIT_BURST="1000000",
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
        from harness import aws

        made = aws.provision(moto.url, aws.Names.for_run("bench"), visibility_timeout=120, upload_events=False,
                             key_description="bench")
        # A subscriber, as in a deployment: the emulator fans each event out to a queue (made.tap_url).
        self.s3, self.sqs = aws.client("s3", moto.url), aws.client("sqs", moto.url)
        self.bucket, self.tap_url = made.bucket, made.tap_url
        return dict(aws.EMULATOR_CREDENTIALS, AWS_ENDPOINT_URL=moto.url, **made.service_env())

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
        self.api_proc = procs.start([self.args.bin, "api"], self.work / f"api-{self.backend}.log", self.env, append=True)
        procs.wait_http(f"http://127.0.0.1:{self.api_port}/healthz", 60, self.api_proc)

    def stop_api(self) -> None:
        if self.api_proc is not None:
            procs.stop(self.api_proc, 15)
            self.api_proc = None

    def start_workers(self, processes: int, concurrency: int | None) -> None:
        """Starts the workers; `concurrency` None leaves WORKER_CONCURRENCY to its default."""
        self.stop_workers()
        env = dict(self.env)
        if concurrency is not None:
            env["WORKER_CONCURRENCY"] = str(concurrency)
        for _ in range(processes):
            path = self.work / f"worker-{self.backend}-{len(self.worker_logs)}.log"
            self.worker_logs.append(path)
            proc = procs.start([self.args.bin, "worker"], path, env)
            self.workers.append(proc)
            text = procs.wait_log(path, b"worker started", 60, proc)
            started = re.search(rb'"concurrency":\s*(\d+)', text)
            self.slots = int(started.group(1)) if started else concurrency

    def stop_workers(self) -> None:
        for proc in self.workers:
            procs.stop(proc, 15)
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


def count_jobs(stack: Stack) -> int:
    if stack.backend == "embedded":
        db = sqlite3.connect(stack.data_dir / "image-service.db", timeout=60)
        try:
            return db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        finally:
            db.close()
    return int(psql(f"{stack.pg}/{stack.database}", "SELECT count(*) FROM jobs").strip())
