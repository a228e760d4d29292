"""The run's load and its faults.

Uploads go through the API like a client's (an `Idempotency-Key` per upload, retried on
429/5xx and on connection errors), while workers are SIGKILLed every few seconds and some
job messages are sent twice. Meanwhile one fault thread works through the backend's plan,
one fault at a time, each when the uploads have come that far (so they never overlap and
each one's effect can be told apart): API restarts, S3/SQS/SNS errors, latency, resets and
a blackhole at the emulator, a Postgres restart and blackhole, a Redis outage, a webhook
receiver answering 503, a full disk. Then every job is polled until it is final."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from . import proxy as px
from .cluster import ROOT, Cluster

IMAGES = [("orient3.jpg", "image/jpeg"), ("astronaut.png", "image/png"), ("dice_rgba.png", "image/png")]
FINAL = ("succeeded", "failed", "dead")
# Statuses a client retries an upload on; any other refusal is a bug in this run.
RETRYABLE = (429, 500, 502, 503, 504, 507)


@dataclass
class Accepted:
    job_id: str
    image_id: str
    sha256: str
    size: int


@dataclass
class Step:
    at: float  # fraction of the uploads done when it starts
    name: str
    run: Callable[[], None]


@dataclass
class Load:
    cluster: Cluster
    rng: random.Random
    jobs: int
    kill_every: float
    duplicate_share: float
    window: float  # how long a windowed fault lasts, in seconds
    cycles: int = 1  # how many times the fault plan runs over the uploads
    # "anytime": the API is SIGKILLed whenever its turn comes, mid-request too;
    # "between": only between two upload requests (none in flight).
    api_kill: str = "anytime"
    accepted: dict[str, Accepted] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)  # job id -> last status the API gave
    attempts: dict[str, int] = field(default_factory=dict)  # job id -> its attempts then
    done: int = 0
    kills: int = 0
    duplicates_sent: int = 0
    next_kill: float = 0.0
    finished_at_kill: int = -1  # jobs final at the last kill
    faults_done: list[str] = field(default_factory=list)
    faults_missing: list[str] = field(default_factory=list)  # planned but not injectable here
    upload_answers: dict[int, int] = field(default_factory=dict)  # status -> count, while retrying
    full_disk_answers: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what the service did wrong under a fault
    notes: list[str] = field(default_factory=list)  # what the run saw, to read beside the problems
    redis_probes: int = 0
    recovered_after: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.cluster.api_key}"}
        self.bodies = {name: (ROOT / "testdata" / name).read_bytes() for name, _ in IMAGES}
        self.digests = {name: hashlib.sha256(b).hexdigest() for name, b in self.bodies.items()}
        self.lock = threading.Lock()
        self.upload_gate = threading.Lock()  # held by an upload request in flight
        self.plan = self._plan()
        self.fault_thread = threading.Thread(target=self._run_plan, daemon=True)

    # --- uploads ---------------------------------------------------------------------
    def _request(self, i: int, key: str | None) -> urllib.request.Request:
        name, content_type = IMAGES[i % len(IMAGES)]
        headers = {"Content-Type": content_type, **self.auth}
        if key:
            headers["Idempotency-Key"] = key
        return urllib.request.Request(f"{self.cluster.api_url}/v1/images", data=self.bodies[name], headers=headers)

    def _accept(self, i: int, job: dict) -> None:
        name = IMAGES[i % len(IMAGES)][0]
        with self.lock:
            self.accepted[job["id"]] = Accepted(job["id"], job["image_id"], self.digests[name], len(self.bodies[name]))

    def submit(self, i: int) -> dict:
        """Uploads image i, retrying as a client does until the upload is accepted. The
        Idempotency-Key makes a retry after a lost answer (an API killed mid-request)
        find the same job instead of making a second one."""
        key = f"chaos-{self.cluster.run_id}-{i}"
        give_up = time.time() + 180
        while True:
            if time.time() > give_up:
                raise RuntimeError(f"upload {i} not accepted in 180 s of retries: {self.upload_answers}")
            try:
                with self.upload_gate, urllib.request.urlopen(self._request(i, key), timeout=30) as response:
                    job = json.load(response)
                    self._count(response.status)
                    return job
            except urllib.error.HTTPError as err:
                self._count(err.code)
                if err.code not in RETRYABLE:
                    raise RuntimeError(f"upload {i} refused: {err.code} {err.read()[:500]!r}") from None
                time.sleep(0.2)
            except (urllib.error.URLError, OSError):
                self._count(0)
                time.sleep(0.2)

    def _count(self, status: int) -> None:
        with self.lock:
            self.upload_answers[status] = self.upload_answers.get(status, 0) + 1

    def send_duplicate(self, job: dict) -> None:
        """The job's message once more, as SQS may deliver it (a queue row on the table queue)."""
        self.cluster.send_duplicate(job)
        self.duplicates_sent += 1

    def maybe_kill(self) -> None:
        """Kills a worker every `kill_every` seconds, but only once some job finished since
        the last kill: on a slow (or busy) machine a job may outlast the interval, and
        kills that always come first would only ever retry it."""
        if time.time() < self.next_kill:
            return
        finished = self.cluster.finished()
        if finished <= self.finished_at_kill:
            return
        self.cluster.kill_worker(self.rng.randrange(self.cluster.worker_count))
        self.kills += 1
        self.finished_at_kill = finished
        self.next_kill = time.time() + self.kill_every

    def upload_all(self) -> None:
        self.next_kill = time.time() + self.kill_every
        self.fault_thread.start()
        for i in range(self.jobs):
            job = self.submit(i)
            self._accept(i, job)
            self.done = i + 1
            if self.rng.random() < self.duplicate_share:
                self.send_duplicate(job)
            self.maybe_kill()

    def status(self, job_id: str) -> str | None:
        poll = urllib.request.Request(f"{self.cluster.api_url}/v1/jobs/{job_id}", headers=self.auth)
        try:
            with urllib.request.urlopen(poll, timeout=10) as response:
                view = json.load(response)
                self.attempts[job_id] = view.get("attempts")
                return view["status"]
        except (urllib.error.URLError, OSError, ValueError):
            return None  # the API is being restarted, or a backing service is down: later

    def settle(self, timeout: float, stall: float = 90.0) -> bool:
        """Polls until every job is final and the fault plan is through, or the time is up,
        or nothing moved for `stall` seconds after the plan (a job no worker will ever
        take: the ledger reports it); keeps killing workers for a while (3 kills per
        worker in all) so that jobs in flight are hit too. Returns whether it settled."""
        deadline, moved = time.time() + timeout, time.time()
        while time.time() < deadline:
            for j in [j for j in self.accepted if self.final.get(j) not in FINAL]:
                before = (self.final.get(j), self.attempts.get(j))
                self.final[j] = self.status(j) or self.final.get(j, "unknown")
                if (self.final[j], self.attempts.get(j)) != before:
                    moved = time.time()
            if all(self.final.get(j) in FINAL for j in self.accepted) and not self.fault_thread.is_alive():
                return True
            if not self.fault_thread.is_alive() and time.time() - moved > stall:
                stuck = [j for j in self.accepted if self.final.get(j) not in FINAL]
                self.problems.append(f"{len(stuck)} jobs did not move for {stall:.0f} s: {stuck[:5]}")
                self.notes += [f"while stuck: {line}" for line in self.cluster.diagnose()]
                return True
            if self.kills < 3 * self.cluster.worker_count or self.fault_thread.is_alive():
                self.maybe_kill()
            time.sleep(0.5)
        return False

    def refresh_final(self) -> None:
        """The API's answer for every job once more, after the last fault (the cache's view)."""
        for j in self.accepted:
            for _ in range(20):
                status = self.status(j)
                if status is not None:
                    self.final[j] = status
                    break
                time.sleep(0.5)

    # --- the fault plan ----------------------------------------------------------------
    def _plan(self) -> list[Step]:
        c, w = self.cluster, self.window
        steps: list[tuple[str, Callable[[], None]]] = []
        if c.backend == "aws":
            steps += [
                ("s3-put-slowdown", lambda: self._http_fault("s3-put-slowdown", px.is_s3_put_object, 0.35,
                                                             answer=px.s3_slow_down)),
                ("sqs-delete-errors", lambda: self._http_fault("sqs-delete-errors", px.is_sqs_delete, 0.5,
                                                               answer=px.sqs_delete_error)),
                ("sns-publish-errors", lambda: self._http_fault("sns-publish-errors", px.is_sns_publish, 0.5,
                                                                answer=px.sns_throttled)),
                ("api-restart", self._restart_api),
                ("emulator-latency", lambda: self._http_fault("emulator-latency", lambda r: True, 1.0,
                                                              delay=(0.05, 0.4))),
                ("emulator-resets", self._emulator_resets),
                ("emulator-blackhole", lambda: c.proxy.blackhole(min(w, 3.0))),
                ("postgres-restart", lambda: c.postgres.restart(3.0)),
                ("postgres-blackhole", lambda: c.pg_proxy.blackhole(2.0)),
                ("redis-outage", self._redis_outage),
                ("webhook-503", self._webhook_outage),
            ]
        else:
            if c.disk is not None:
                steps.append(("full-disk", self._full_disk))
            else:
                self.faults_missing.append("full-disk (tmpfs mount refused)")
            steps += [
                ("api-restart", self._restart_api),
                ("redis-outage", self._redis_outage),
                ("webhook-503", self._webhook_outage),
            ]
        steps.append(("api-restart", self._restart_api))
        total = len(steps) * self.cycles
        # Spread over the first 90% of the uploads, so the last fault still meets load.
        return [Step(0.9 * k / total, name, run) for k, (name, run) in enumerate(steps * self.cycles)]

    def _run_plan(self) -> None:
        for step in self.plan:
            while self.done < step.at * self.jobs:
                time.sleep(0.05)
            try:
                step.run()
                self.faults_done.append(step.name)
            except Exception as err:  # noqa: BLE001 (a fault that failed to inject is reported)
                self.problems.append(f"fault {step.name} could not be injected: {err!r}")

    def _restart_api(self) -> None:
        if self.api_kill == "between":
            with self.upload_gate:
                self.cluster.restart_api()
        else:
            self.cluster.restart_api()

    def _http_fault(self, name: str, match, share: float, answer=None, delay=None, reset=False) -> None:
        """Injects the fault for one window, kept on (up to 3 windows, at least 20 s) until it has hit once."""
        started = time.time()
        # Batched deletes are few on a busy machine: give a fault at least 20 s to hit.
        fault = px.Fault(name, match, share, started + max(3 * self.window, 20.0), answer=answer, delay=delay,
                         reset=reset)
        self.cluster.proxy.inject(fault)
        time.sleep(self.window)
        while not self.cluster.proxy.counts.injected.get(name) and time.time() < fault.until:
            time.sleep(0.2)
        fault.until = time.time()

    def _webhook_outage(self) -> None:
        """The receiver refuses half the deliveries for one window, longer (up to 3) until one was refused."""
        hook, before = self.cluster.webhook, self.cluster.webhook.refused
        hook.fail_share, hook.fail_until = 0.5, time.time() + 3 * self.window
        time.sleep(self.window)
        while hook.refused == before and time.time() < hook.fail_until:
            time.sleep(0.2)
        hook.fail_until = time.time()

    def _emulator_resets(self) -> None:
        self.cluster.proxy.reset_all()
        self._http_fault("emulator-resets", lambda r: True, 0.05, reset=True)

    def _some_ids(self) -> tuple[str, str] | None:
        with self.lock:
            if not self.accepted:
                return None
            a = self.rng.choice(list(self.accepted.values()))
        return a.job_id, a.image_id

    def _redis_outage(self) -> None:
        """Redis away for a window; the API's reads must keep answering (the cache fails open)."""
        redis = self.cluster.redis
        from harness import procs

        procs.kill(redis.proc)
        until = time.time() + self.window
        while time.time() < until:
            ids = self._some_ids()
            if ids:
                for path in (f"/v1/jobs/{ids[0]}", f"/v1/images/{ids[1]}"):
                    self.redis_probes += 1
                    try:
                        with urllib.request.urlopen(urllib.request.Request(self.cluster.api_url + path,
                                                                           headers=self.auth), timeout=10):
                            pass
                    except urllib.error.HTTPError as err:
                        self.problems.append(f"redis outage: GET {path} answered {err.code}: {err.read()[:300]!r}")
                    except (urllib.error.URLError, OSError) as err:
                        self.problems.append(f"redis outage: GET {path} failed: {err!r}")
            time.sleep(0.2)
        redis.start()
        redis.outages += 1

    def _full_disk(self) -> None:
        """Fills the object store's filesystem for a window while uploading: every answer
        must be a 503/507 problem (or a 2xx whose object the ledger then finds stored);
        after space returns an upload must be accepted again."""
        disk = self.cluster.disk
        disk.fill()
        until, n = time.time() + self.window, 0
        try:
            while time.time() < until:
                n += 1
                i = self.rng.randrange(len(IMAGES))
                request = self._request(i, None)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self._tally_disk(str(response.status))
                        self._accept(i, json.load(response))
                except urllib.error.HTTPError as err:
                    body = err.read()[:500]
                    self._tally_disk(str(err.code))
                    kind = err.headers.get("content-type", "")
                    if err.code not in (503, 507) or "problem+json" not in kind:
                        self.problems.append(f"full disk: POST /v1/images ({IMAGES[i][0]}) answered {err.code} "
                                             f"{kind}: {body!r}")
                except (urllib.error.URLError, OSError) as err:
                    self._tally_disk("no-answer")
                    self.problems.append(f"full disk: POST /v1/images got no answer: {err!r}")
                time.sleep(0.1)
        finally:
            disk.drain()
        started = time.time()
        while True:
            i = self.rng.randrange(len(IMAGES))
            try:
                with urllib.request.urlopen(self._request(i, None), timeout=30) as response:
                    self._accept(i, json.load(response))
                    self.recovered_after.append(time.time() - started)
                    return
            except (urllib.error.URLError, OSError):
                if time.time() - started > 30:
                    self.problems.append("full disk: no upload accepted within 30 s after space returned")
                    return
                time.sleep(0.2)

    def _tally_disk(self, status: str) -> None:
        self.full_disk_answers[status] = self.full_disk_answers.get(status, 0) + 1
