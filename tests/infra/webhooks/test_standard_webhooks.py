"""Webhook deliveries verify with the Standard Webhooks reference library.

`image-service run` on the embedded defaults, WEBHOOK_URL pointing at a receiver here and
WEBHOOK_SECRETS holding two secrets (a rotation in progress). The receiver refuses the first
delivery with 500, so the retry is checked too. Every delivery must verify with
`standardwebhooks.Webhook` (PyPI, the specification's reference library) under either secret;
a tampered body, a stale timestamp or an unknown secret must not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import ADMIN_KEY, Receiver, service_env

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from harness import procs  # noqa: E402
from harness.ports import free_port  # noqa: E402


@pytest.fixture(scope="module")
def delivered(tmp_path_factory, exe):
    secrets = [subprocess.run([str(exe), "webhooks", "secret"], capture_output=True, text=True, check=True).stdout.strip()
               for _ in range(2)]
    assert all(s.startswith("whsec_") for s in secrets) and secrets[0] != secrets[1]
    # The first delivery is refused, so the retry is checked too.
    receiver = Receiver(lambda n: 500 if n == 0 else 204)
    work = tmp_path_factory.mktemp("webhooks")
    port = free_port()
    env = service_env(work, port, WEBHOOK_URL=receiver.url, WEBHOOK_SECRETS=",".join(secrets),
                      RETRY_BASE_DELAY_MS="200")
    proc = procs.start([exe, "run"], work / "service.log", env)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
        photo = (ROOT / "testdata" / "dice_rgba.png").read_bytes()
        job = requests.post(f"http://127.0.0.1:{port}/v1/images", data=photo, timeout=30,
                            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "image/png"}).json()
        deadline = time.monotonic() + 60
        while len(receiver.accepted()) < 1:
            assert time.monotonic() < deadline, (work / "service.log").read_text()[-3000:]
            time.sleep(0.2)
        yield secrets, receiver.deliveries, job
    finally:
        procs.stop(proc, 10)
        receiver.shutdown()


def test_every_delivery_verifies_under_either_secret(delivered):
    secrets, deliveries, job = delivered
    assert len(deliveries) >= 2, "the refused first delivery was retried"
    for headers, body, _ in deliveries:
        for secret in secrets:
            event = Webhook(secret).verify(body, headers)
            assert event["job_id"] == job["id"]
            assert headers["webhook-id"] == event["event_id"]
        assert len(headers["webhook-signature"].split(" ")) == 2


def test_a_retry_keeps_its_id_and_signs_anew(delivered):
    _, deliveries, _ = delivered
    (first, _, refused), (retry, _, accepted) = deliveries[0], deliveries[1]
    assert (refused, accepted) == (500, 204)
    assert first["webhook-id"] == retry["webhook-id"]
    assert int(retry["webhook-timestamp"]) >= int(first["webhook-timestamp"])


def test_a_forged_tampered_or_stale_delivery_does_not_verify(delivered):
    secrets, deliveries, _ = delivered
    headers, body, _ = deliveries[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(subprocess.run([str(procs.service_binary()), "webhooks", "secret"], capture_output=True, text=True, check=True)
                .stdout.strip()).verify(body, headers)
    tampered = body.replace(b'"status":"succeeded"', b'"status":"failed"')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(secrets[0]).verify(tampered, headers)
    # Re-signed with a timestamp ten minutes old: the signature is right, the time is not.
    old = datetime.now(tz=timezone.utc) - timedelta(minutes=10)
    stale = dict(headers, **{"webhook-timestamp": str(int(old.timestamp())),
                             "webhook-signature": Webhook(secrets[0]).sign(headers["webhook-id"], old, body.decode())})
    with pytest.raises(WebhookVerificationError):
        Webhook(secrets[0]).verify(body, stale)
    json.loads(body)
