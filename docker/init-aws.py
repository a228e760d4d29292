#!/usr/bin/env python3
"""Create the AWS resources the local stack needs, inside the moto emulator.

Run once by the compose `init` service (it uses the moto image, which already
ships boto3, so nothing is installed at start-up). The resources are the ones
every tool of the repository makes, by tools/lib/harness/aws.py (mounted at
/tools/lib by the compose file); it mirrors what terraform/ creates on AWS,
closely enough for the services to take the same code path:

- a KMS key with an alias; the bucket's default encryption is SSE-KMS with it
- the bucket, with `uploads/` ObjectCreated events sent to the job queue
- the job queue and its dead-letter queue, joined by a redrive policy, and the same pair
  for the bulk lane (replays and reprocessing)
- the SNS event topic, with an SQS subscription (`image-events-tap`) so a
  developer can read every event the worker publishes

Every step is idempotent: re-running `docker compose up` re-runs this script
against a moto that may already hold the resources.

Names come from the environment (defaults match docker-compose.yml).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# /docker/init-aws.py and /tools/lib in the container; docker/ and tools/lib in the repository.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "lib"))

from harness import aws, procs  # noqa: E402

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://moto:5000")
REGION = os.environ.get("AWS_REGION", "us-east-1")
NAMES = aws.Names(
    bucket=os.environ.get("S3_BUCKET", "image-service-local"),
    kms_alias=os.environ.get("KMS_ALIAS", "alias/image-service-local"),
    queue=os.environ.get("JOB_QUEUE_NAME", "image-jobs"),
    dlq=os.environ.get("DLQ_NAME", "image-jobs-dlq"),
    bulk_queue=os.environ.get("BULK_QUEUE_NAME", "image-jobs-bulk"),
    bulk_dlq=os.environ.get("BULK_DLQ_NAME", "image-jobs-bulk-dlq"),
    topic=os.environ.get("TOPIC_NAME", "image-events"),
    tap=os.environ.get("TAP_QUEUE_NAME", "image-events-tap"),
)
# A job is retried this many times before SQS moves it to the DLQ.
MAX_RECEIVE_COUNT = os.environ.get("MAX_RECEIVE_COUNT", "5")
# Longer than the worker's slowest job, so a job in flight is not redelivered.
VISIBILITY_TIMEOUT = os.environ.get("VISIBILITY_TIMEOUT_SECS", "120")


def main() -> int:
    # compose waits for moto's healthcheck, but keep a short wait for manual runs.
    procs.wait_http(f"{ENDPOINT}/moto-api/data.json", timeout=30)
    made = aws.provision(
        ENDPOINT,
        NAMES,
        region=REGION,
        visibility_timeout=VISIBILITY_TIMEOUT,
        max_receive_count=MAX_RECEIVE_COUNT,
        key_description="image-service local SSE-KMS key",
    )
    print("local AWS resources ready:")
    for name, value in [
        ("S3_BUCKET", made.bucket),
        ("S3_KMS_KEY_ID (alias ARN)", made.alias_arn),
        ("KMS key ARN", made.key_arn),
        ("SQS_QUEUE_URL", made.queue_url),
        ("SQS_DLQ_URL", made.dlq_url),
        ("SQS_BULK_QUEUE_URL", made.bulk_queue_url),
        ("SQS_BULK_DLQ_URL", made.bulk_dlq_url),
        ("SNS_TOPIC_ARN", made.topic_arn),
        ("event tap queue", made.tap_url),
    ]:
        print(f"  {name:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
