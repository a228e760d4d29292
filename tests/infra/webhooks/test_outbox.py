"""Webhook deliveries are durable: a killed worker loses none, and expired ones can be replayed.

Each test runs `image-service run` on the embedded defaults against a receiver here. The
deliveries are recorded with the jobs' outcomes, in the same transaction, so they outlive the
process that made them; whichever process runs next delivers them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import requests
from standardwebhooks import Webhook

from conftest import ADMIN_KEY, Receiver, service_env

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from harness import procs  # noqa: E402
from harness.ports import free_port  # noqa: E402

PHOTOS = ["dice_rgba.png", "canon_orient6.jpg", "kleiber.jpg", "orient3.jpg"]


def upload(port: int, name: str) -> str:
    path = ROOT / "testdata" / name
    kind = "image/png" if name.endswith(".png") else "image/jpeg"
    response = requests.post(f"http://127.0.0.1:{port}/v1/images", data=path.read_bytes(), timeout=30,
                             headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": kind})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_until(check, what: str, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}; service log:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    return result


def finished(port: int, jobs: list[str]) -> bool:
    statuses = [requests.get(f"http://127.0.0.1:{port}/v1/jobs/{job}", timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["status"] for job in jobs]
    return all(s in ("succeeded", "failed") for s in statuses)


def test_a_killed_worker_loses_no_pending_delivery(tmp_path, exe):
    # Arrange: the receiver is down (503) while the jobs finish.
    secret = subprocess.run([str(exe), "webhooks", "secret"], capture_output=True, text=True, check=True).stdout.strip()
    receiver_up = False
    receiver = Receiver(lambda _n: 204 if receiver_up else 503)
    port = free_port()
    env = service_env(tmp_path, port, WEBHOOK_URL=receiver.url, WEBHOOK_SECRETS=secret, RETRY_BASE_DELAY_MS="300")
    log = tmp_path / "service.log"
    proc = procs.start([exe, "run"], log, env)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
        jobs = [upload(port, name) for name in PHOTOS]
        wait_until(lambda: finished(port, jobs), "the jobs did not finish", log)
        wait_until(lambda: len({d[0]["webhook-id"] for d in receiver.deliveries}) == len(jobs),
                   "not every event was attempted", log)

        # Act: kill the process with every delivery pending, bring the receiver up, restart.
        procs.kill(proc)
        refused = len(receiver.deliveries)
        receiver_up = True
        proc = procs.start([exe, "run"], log, env, append=True)
        accepted = wait_until(lambda: (a := receiver.accepted()) and len(a) >= len(jobs) and a,
                              "the pending deliveries did not arrive after the restart", log)
        time.sleep(3)  # Anything delivered twice would arrive by now.
        accepted = receiver.accepted()
    finally:
        procs.stop(proc, 10)
        receiver.shutdown()

    # Assert: every job's event arrived once per webhook-id, signed, after refusals before the kill.
    assert refused >= len(jobs)
    ids = Counter(headers["webhook-id"] for headers, _, _ in accepted)
    assert len(ids) == len(jobs) and set(ids.values()) == {1}, ids
    events = [Webhook(secret).verify(body, headers) for headers, body, _ in accepted]
    assert sorted(e["job_id"] for e in events) == sorted(jobs)
    assert all(e["event_id"] == h["webhook-id"] for e, (h, _, _) in zip(events, accepted))


def test_an_expired_delivery_is_listed_counted_and_replayed(tmp_path, exe):
    # Arrange: deliveries expire after 2 s; the receiver refuses until told otherwise.
    receiver_up = False
    receiver = Receiver(lambda _n: 204 if receiver_up else 503)
    port, metrics_port = free_port(), free_port()
    env = service_env(tmp_path, port, WEBHOOK_URL=receiver.url, WEBHOOK_DELIVERY_TTL_SECS="2",
                      RETRY_BASE_DELAY_MS="300", METRICS_ADDR=f"127.0.0.1:{metrics_port}")
    log = tmp_path / "service.log"
    proc = procs.start([exe, "run"], log, env)

    def failed() -> list[dict]:
        out = subprocess.run([str(exe), "webhooks", "failed", "--json"], env=env, capture_output=True, text=True,
                             check=True).stdout
        return [json.loads(line) for line in out.splitlines()]

    def expired_metric() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        found = re.search(r'^image_worker_webhook_deliveries_total\{result="expired"\} (\d+)', text, re.M)
        return int(found.group(1)) if found else 0

    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
        job = upload(port, "dice_rgba.png")

        # Act 1: the delivery is refused until it expires.
        listed = wait_until(failed, "the delivery never showed up as failed", log, timeout=30)

        # Assert 1: listed with its event and why, and counted.
        assert len(listed) == 1, listed
        assert listed[0]["event_kind"] == "image.processed" and listed[0]["target"] == "json"
        assert listed[0]["state"] == "expired" and listed[0]["last_error"] == "http-503"
        assert listed[0]["attempts"] >= 1
        assert "body" not in listed[0], "the listing shows no event bodies"
        assert expired_metric() == 1

        # Act 2: the receiver is back; the operator replays.
        receiver_up = True
        replay = subprocess.run([str(exe), "webhooks", "replay", "--all"], env=env, capture_output=True, text=True,
                                check=True)
        wait_until(receiver.accepted, "the replayed delivery did not arrive", log, timeout=30)
    finally:
        procs.stop(proc, 10)
        receiver.shutdown()

    # Assert 2: one delivery, the same event, and nothing left failed.
    assert replay.stdout.strip() == "1"
    (headers, body, _), = receiver.accepted()
    assert headers["idempotency-key"] == listed[0]["event_id"]
    assert json.loads(body)["job_id"] == job
    assert failed() == []
