"""The run's load and its faults: uploads through the API while workers are killed,
job messages are sent twice and the emulator is cut off once; then every job is polled
until it reaches a final state."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .cluster import ROOT, Cluster

IMAGES = [("orient3.jpg", "image/jpeg"), ("astronaut.png", "image/png"), ("dice_rgba.png", "image/png")]
FINAL = ("succeeded", "failed", "dead")
# Statuses a client retries an upload on; any other refusal is a bug in this run.
RETRYABLE = (429, 500, 502, 503, 504)


@dataclass
class Faults:
    """The fault schedule, and what was injected."""

    rng: random.Random
    workers: int
    kill_every: float
    duplicate_share: float
    next_kill: float = 0.0
    kills: int = 0
    duplicates_sent: int = 0

    def maybe_kill(self, cluster: Cluster) -> None:
        if time.time() >= self.next_kill:
            cluster.kill_worker(self.rng.randrange(self.workers))
            self.kills += 1
            self.next_kill = time.time() + self.kill_every


@dataclass
class Load:
    cluster: Cluster
    faults: Faults
    submitted: dict[str, str] = field(default_factory=dict)  # job id -> image id
    final: dict[str, str] = field(default_factory=dict)  # job id -> last status seen

    def __post_init__(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.cluster.api_key}"}
        self.bodies = {name: (ROOT / "testdata" / name).read_bytes() for name, _ in IMAGES}

    def submit(self, i: int) -> dict:
        """Uploads image i, retrying as a client does until the upload is accepted."""
        name, content_type = IMAGES[i % len(IMAGES)]
        while True:
            request = urllib.request.Request(
                f"{self.cluster.api_url}/v1/images",
                data=self.bodies[name],
                headers={"Content-Type": content_type, **self.auth},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE:
                    raise
                time.sleep(0.2)
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)

    def send_duplicate(self, job: dict) -> None:
        """The job's message once more, as SQS may deliver it."""
        body = {"v": 1, "job_id": job["id"], "image_id": job["image_id"], "source_key": f"originals/{job['image_id']}"}
        self.cluster.sqs.send_message(QueueUrl=self.cluster.resources.queue_url, MessageBody=json.dumps(body))
        self.faults.duplicates_sent += 1

    def upload_all(self, jobs: int) -> None:
        """Submits `jobs` jobs; the emulator goes away once, a third of the way in."""
        outage_at = jobs // 3
        self.faults.next_kill = time.time() + self.faults.kill_every
        for i in range(jobs):
            job = self.submit(i)
            self.submitted[job["id"]] = job["image_id"]
            if self.faults.rng.random() < self.faults.duplicate_share:
                self.send_duplicate(job)
            if i == outage_at:
                self.cluster.proxy.outage_in_background(3.0)
            self.faults.maybe_kill(self.cluster)

    def status(self, job_id: str) -> str:
        poll = urllib.request.Request(f"{self.cluster.api_url}/v1/jobs/{job_id}", headers=self.auth)
        with urllib.request.urlopen(poll, timeout=10) as response:
            return json.load(response)["status"]

    def settle(self, timeout: float) -> None:
        """Polls until every job is final or the time is up; keeps killing workers for a
        while (3 kills per worker in all) so that jobs in flight are hit too."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for j in [j for j in self.submitted if self.final.get(j) not in FINAL]:
                self.final[j] = self.status(j)
            if all(self.final.get(j) in FINAL for j in self.submitted):
                break
            if self.faults.kills < 3 * self.faults.workers:
                self.faults.maybe_kill(self.cluster)
            time.sleep(0.5)
