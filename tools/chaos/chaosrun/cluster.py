"""The system under test: moto behind the proxy, the service's AWS resources, a fresh
Postgres database, one API and several workers of the real binary."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

from harness import aws, procs
from harness.ports import free_port

from .proxy import Proxy

ROOT = Path(__file__).resolve().parents[3]


def service_env(resources: aws.Resources, proxy: Proxy, database_url: str, api_port: int, api_key: str) -> dict[str, str]:
    """The settings of every process: short waits and retries, so that faults show fast."""
    env = dict(os.environ, **aws.EMULATOR_CREDENTIALS, AWS_DEFAULT_REGION=aws.REGION)
    # The worker learns of the dead-letter queue only from the redrive policy, as before.
    env.update(resources.service_env(dlq=False))
    env.update(
        DATABASE_URL=database_url,
        AWS_ENDPOINT_URL=proxy.url,
        LISTEN_ADDR=f"127.0.0.1:{api_port}",
        METRICS_ADDR="127.0.0.1:0",
        QUEUE_WAIT_SECS="1",
        VISIBILITY_TIMEOUT_SECS="8",
        RETRY_BASE_DELAY_MS="500",
        WORKER_CONCURRENCY="2",
        LOG_FORMAT="json",
        # The client authenticates with a bootstrap admin key; the rate limit is
        # a policy, not what this run tests.
        ADMIN_API_KEY=api_key,
        RATE_LIMIT_PER_SECOND="100000",
        RATE_LIMIT_BURST="100000",
        TENANT_RATE_LIMIT_PER_SECOND="100000",
        TENANT_RATE_LIMIT_BURST="100000",
    )
    return env


class Cluster:
    """Everything one chaos run starts; close() stops it all (SIGKILL, as the run ends)."""

    def __init__(self, binary: str, workers: int) -> None:
        self.binary = binary
        self.work = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.logs = open(self.work / "processes.log", "wb")
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.proxy: Proxy | None = None
        aws.use_emulator_credentials()
        self.moto = procs.Moto(ROOT / ".venv/test/bin/moto_server", self.work / "moto.log")
        self.procs.append(self.moto.proc)
        try:
            self._set_up(workers)
        except BaseException:
            self.close()
            raise

    def _set_up(self, workers: int) -> None:
        self.proxy = Proxy(self.moto.port)
        run = uuid.uuid4().hex[:8]
        # The harness itself talks to the emulator directly, never through the proxy.
        self.resources = aws.provision(self.moto.url, aws.Names.for_run("chaos", run), visibility_timeout=8,
                                       max_receive_count=10, upload_events=False, key_description="chaos")
        self.sqs = aws.client("sqs", self.moto.url)
        self.s3 = aws.client("s3", self.moto.url)
        self.api_port = free_port()
        self.api_key = f"chaos-{run}"
        self.env = service_env(self.resources, self.proxy, self._create_database(f"chaos_{run}"), self.api_port, self.api_key)
        self._start_service(workers)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _create_database(self, name: str) -> str:
        pg = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
        subprocess.run(["psql", f"{pg}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True, stdout=self.logs)
        return f"{pg}/{name}"

    def _start_service(self, workers: int) -> None:
        subprocess.run([self.binary, "migrate"], env=self.env, check=True, stdout=self.logs, stderr=self.logs)
        api = procs.start([self.binary, "api"], self.logs, self.env)
        self.procs.append(api)
        procs.wait_http(f"{self.api_url}/healthz", 30, api)
        self.workers = [self._worker() for _ in range(workers)]

    def _worker(self) -> subprocess.Popen:
        return procs.start([self.binary, "worker"], self.logs, self.env)

    def kill_worker(self, victim: int) -> None:
        """SIGKILLs worker `victim` and starts a new one in its place."""
        procs.kill(self.workers[victim])
        self.workers[victim] = self._worker()

    def close(self) -> None:
        for p in self.workers + self.procs:
            procs.kill(p)
        if self.proxy:
            self.proxy.close()
