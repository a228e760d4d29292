"""What the run did, per submitted job: its final state, and whether any effect happened
twice (more than one distinct event for the job, or more objects than presets)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .cluster import Cluster
from .load import FINAL, Load

# The default presets: each image has this many variant objects, at most.
PRESETS = 3


def events_by_job(cluster: Cluster) -> dict[str, list[str]]:
    """Drains the event tap: event ids per job id (repeats kept)."""
    sqs, url = cluster.sqs, cluster.resources.tap_url
    events: dict[str, list[str]] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return events
        for message in batch:
            event = json.loads(message["Body"])
            events.setdefault(event["job_id"], []).append(event["event_id"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def objects_by_image(cluster: Cluster) -> dict[str, list[str]]:
    objects: dict[str, list[str]] = {}
    pages = cluster.s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.resources.bucket, Prefix="variants/")
    for page in pages:
        for item in page.get("Contents", []):
            objects.setdefault(item["Key"].split("/")[1], []).append(item["Key"])
    return objects


@dataclass
class Tally:
    submitted: int
    counts: dict[str, int]
    lost: int
    duplicate_effects: int
    missing_events: int
    repeated_deliveries: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicate_effects == 0 and self.missing_events == 0


# A worker killed between a job's commit and its publish leaves the event to the
# message's redelivery, which comes a visibility timeout later (8 s here) and may
# wait out the publish grace (10 s) once more. Events are owed, not instant.
EVENT_DEADLINE = 60.0


def gather_events(load: Load, deadline: float = EVENT_DEADLINE) -> dict[str, list[str]]:
    """Drains the event tap until every job that ended has its event, or the deadline passes."""
    events: dict[str, list[str]] = {}
    until = time.time() + deadline
    while True:
        for job_id, ids in events_by_job(load.cluster).items():
            events.setdefault(job_id, []).extend(ids)
        owed = [j for j in load.submitted if load.final.get(j) in FINAL and not events.get(j)]
        if not owed or time.time() >= until:
            return events
        time.sleep(1.0)


def tally(load: Load) -> Tally:
    events, objects = gather_events(load), objects_by_image(load.cluster)
    final, submitted = load.final, load.submitted
    counts = {s: sum(1 for j in submitted if final.get(j) == s) for s in FINAL}
    duplicate_effects = sum(
        1
        for job_id, image_id in submitted.items()
        if len(set(events.get(job_id, []))) > 1 or len(objects.get(image_id, [])) > PRESETS
    )
    return Tally(
        submitted=len(submitted),
        counts=counts,
        lost=sum(1 for j in submitted if final.get(j) not in FINAL),
        duplicate_effects=duplicate_effects,
        missing_events=sum(1 for j in submitted if final.get(j) in counts and not events.get(j)),
        repeated_deliveries=sum(len(v) - len(set(v)) for v in events.values()),
    )
