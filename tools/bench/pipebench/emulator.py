"""The AWS emulator as the benchmark sees it: its request count, and its own rate for
raw calls."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from harness import aws, procs


class Moto(procs.Moto):
    """The AWS emulator from .venv/test, with its request log."""

    def __init__(self, server: str, work: Path) -> None:
        # Only the emulator's dummy credentials, so no real account or profile leaks in.
        aws.use_emulator_credentials()
        super().__init__(server, work / "moto.log")

    def requests(self) -> int:
        """Requests moto has logged so far (werkzeug logs one line per request)."""
        pattern = re.compile(rb'"[A-Z]+ \S+ HTTP/1\.[01]" \d{3}')
        with open(self.log_path, "rb") as f:
            return sum(1 for line in f if pattern.search(line))


def emulator_burst(moto: Moto, calls: int) -> dict:
    """Raw calls straight to the emulator, one at a time: its own request rate."""
    sqs = aws.client("sqs", moto.url)
    s3 = aws.client("s3", moto.url)
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
