"""Chaos harness for the worker's delivery guarantees.

Runs the real binary (one API, several workers) against moto and Postgres,
submits jobs through the API, and meanwhile:
  - SIGKILLs a random worker every few seconds and starts a new one;
  - sends some job messages a second time, as SQS may;
  - cuts the emulator off once for a few seconds: every connection to it is
    dropped and new ones are refused, as during a restart. (moto keeps its
    state in memory, so a real restart would erase the bucket and queues;
    the proxy gives the same outage with the state kept.)
At the end it counts, per submitted job, whether it reached a final state and
whether any effect happened twice: more than one row or object per preset,
or more than one distinct event for the job.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
IMAGES = [("orient3.jpg", "image/jpeg"), ("astronaut.png", "image/png"), ("dice_rgba.png", "image/png")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP proxy in front of the emulator that can be cut off."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.down = threading.Event()
        self.conns = set()
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(256)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            if self.down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def outage(self, seconds):
        self.down.set()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns.clear()
        time.sleep(seconds)
        self.down.clear()


def wait_http(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    sys.exit(f"chaos: {url} did not come up")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--duplicate-share", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--smoke", action="store_true", help="a short run for CI: 30 jobs")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.kill_every = 30, 1.5
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    logs = open(work / "processes.log", "wb")
    procs = []

    moto_port = free_port()
    moto = subprocess.Popen(
        [str(ROOT / ".venv/test/bin/moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], stdout=logs, stderr=logs
    )
    procs.append(moto)
    wait_http(f"http://127.0.0.1:{moto_port}/moto-api/data.json")
    proxy = Proxy(moto_port)
    direct = f"http://127.0.0.1:{moto_port}"
    env_aws = dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    os.environ.update(env_aws)
    kms = boto3.client("kms", endpoint_url=direct)
    s3 = boto3.client("s3", endpoint_url=direct)
    sqs = boto3.client("sqs", endpoint_url=direct)
    sns = boto3.client("sns", endpoint_url=direct)

    run = uuid.uuid4().hex[:8]
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    bucket = f"chaos-{run}"
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"chaos-dlq-{run}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"chaos-{run}",
        Attributes={
            "VisibilityTimeout": "8",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 10}),
        },
    )["QueueUrl"]
    topic_arn = sns.create_topic(Name=f"chaos-{run}")["TopicArn"]
    events_url = sqs.create_queue(QueueName=f"chaos-events-{run}")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=events_arn, Attributes={"RawMessageDelivery": "true"})

    pg = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    database = f"chaos_{run}"
    subprocess.run(["psql", f"{pg}/postgres", "-qc", f"CREATE DATABASE {database}"], check=True, stdout=logs)
    api_port = free_port()
    api_key = f"chaos-{run}"
    auth = {"Authorization": f"Bearer {api_key}"}
    env = dict(
        os.environ,
        **env_aws,
        DATABASE_URL=f"{pg}/{database}",
        S3_BUCKET=bucket,
        S3_KMS_KEY_ID=key_arn,
        SQS_QUEUE_URL=queue_url,
        SNS_TOPIC_ARN=topic_arn,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
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
    )
    subprocess.run([args.binary, "migrate"], env=env, check=True, stdout=logs, stderr=logs)
    procs.append(subprocess.Popen([args.binary, "api"], env=env, stdout=logs, stderr=logs))
    wait_http(f"http://127.0.0.1:{api_port}/healthz")
    workers = [subprocess.Popen([args.binary, "worker"], env=env, stdout=logs, stderr=logs) for _ in range(args.workers)]

    bodies = {name: (ROOT / "testdata" / name).read_bytes() for name, _ in IMAGES}
    submitted = {}
    kills = duplicates_sent = 0

    def submit(i):
        name, content_type = IMAGES[i % len(IMAGES)]
        while True:  # a client retries until the upload is accepted
            request = urllib.request.Request(
                f"http://127.0.0.1:{api_port}/v1/images",
                data=bodies[name],
                headers={"Content-Type": content_type, **auth},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.load(response)
            except urllib.error.HTTPError as err:
                if err.code not in (429, 500, 502, 503, 504):
                    raise  # a request the API refuses for good is a bug in this run
                time.sleep(0.2)
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)

    outage_at = args.jobs // 3
    next_kill = time.time() + args.kill_every
    started = time.time()
    for i in range(args.jobs):
        job = submit(i)
        submitted[job["id"]] = job["image_id"]
        if rng.random() < args.duplicate_share:
            body = json.dumps({"v": 1, "job_id": job["id"], "image_id": job["image_id"], "source_key": f"originals/{job['image_id']}"})
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
            duplicates_sent += 1
        if i == outage_at:
            threading.Thread(target=proxy.outage, args=(3.0,), daemon=True).start()
        if time.time() >= next_kill:
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            workers[victim] = subprocess.Popen([args.binary, "worker"], env=env, stdout=logs, stderr=logs)
            kills += 1
            next_kill = time.time() + args.kill_every

    # Keep killing for a while after the last upload, then let the workers finish.
    final = {}
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        pending = [j for j in submitted if final.get(j) not in ("succeeded", "failed", "dead")]
        for j in pending:
            poll = urllib.request.Request(f"http://127.0.0.1:{api_port}/v1/jobs/{j}", headers=auth)
            with urllib.request.urlopen(poll, timeout=10) as response:
                final[j] = json.load(response)["status"]
        if all(final.get(j) in ("succeeded", "failed", "dead") for j in submitted):
            break
        if kills < 3 * args.workers and time.time() >= next_kill:
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            workers[victim] = subprocess.Popen([args.binary, "worker"], env=env, stdout=logs, stderr=logs)
            kills += 1
            next_kill = time.time() + args.kill_every
        time.sleep(0.5)
    elapsed = time.time() - started

    # Effects: events per job (distinct event ids), objects per image.
    time.sleep(1.0)
    events = {}
    while True:
        batch = sqs.receive_message(QueueUrl=events_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            break
        for message in batch:
            event = json.loads(message["Body"])
            events.setdefault(event["job_id"], []).append(event["event_id"])
            sqs.delete_message(QueueUrl=events_url, ReceiptHandle=message["ReceiptHandle"])
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="variants/"):
        for item in page.get("Contents", []):
            objects.setdefault(item["Key"].split("/")[1], []).append(item["Key"])

    counts = {s: sum(1 for j in submitted if final.get(j) == s) for s in ("succeeded", "failed", "dead")}
    lost = sum(1 for j in submitted if final.get(j) not in ("succeeded", "failed", "dead"))
    duplicate_effects = 0
    for job_id, image_id in submitted.items():
        distinct_events = set(events.get(job_id, []))
        if len(distinct_events) > 1 or len(objects.get(image_id, [])) > 3:
            duplicate_effects += 1
    missing_events = sum(1 for j in submitted if final.get(j) in counts and not events.get(j))
    repeated_deliveries = sum(len(v) - len(set(v)) for v in events.values())

    for p in workers + procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    proxy.server.close()

    print(
        f"submitted={len(submitted)} succeeded={counts['succeeded']} failed={counts['failed']} dead={counts['dead']} "
        f"lost={lost} duplicate-effects={duplicate_effects}"
    )
    print(
        f"workers={args.workers} kills={kills} duplicate-sends={duplicates_sent} emulator-outages=1 "
        f"jobs-without-event={missing_events} repeated-event-deliveries={repeated_deliveries} elapsed={elapsed:.1f}s logs={work}"
    )
    sys.exit(0 if lost == 0 and duplicate_effects == 0 and missing_events == 0 else 1)


if __name__ == "__main__":
    main()
