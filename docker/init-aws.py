#!/usr/bin/env python3
"""Create the AWS resources the local stack needs, inside the moto emulator.

Run once by the compose `init` service (it uses the moto image, which already
ships boto3, so nothing is installed at start-up). It mirrors what terraform/
creates on AWS, closely enough for the services to take the same code path:

- a KMS key with an alias; the bucket's default encryption is SSE-KMS with it
- the bucket, with `uploads/` ObjectCreated events sent to the job queue
- the job queue and its dead-letter queue, joined by a redrive policy
- the SNS event topic, with an SQS subscription (`image-events-tap`) so a
  developer can read every event the worker publishes

Every step is idempotent: re-running `docker compose up` re-runs this script
against a moto that may already hold the resources.

Names come from the environment (defaults match docker-compose.yml).
"""

from __future__ import annotations

import json
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://moto:5000")
REGION = os.environ.get("AWS_REGION", "us-east-1")
BUCKET = os.environ.get("S3_BUCKET", "image-service-local")
KMS_ALIAS = os.environ.get("KMS_ALIAS", "alias/image-service-local")
QUEUE = os.environ.get("JOB_QUEUE_NAME", "image-jobs")
DLQ = os.environ.get("DLQ_NAME", "image-jobs-dlq")
TOPIC = os.environ.get("TOPIC_NAME", "image-events")
TAP_QUEUE = os.environ.get("TAP_QUEUE_NAME", "image-events-tap")
# A job is retried this many times before SQS moves it to the DLQ.
MAX_RECEIVE_COUNT = os.environ.get("MAX_RECEIVE_COUNT", "5")
# Longer than the worker's slowest job, so a job in flight is not redelivered.
VISIBILITY_TIMEOUT = os.environ.get("VISIBILITY_TIMEOUT_SECS", "120")


def client(service: str):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION)


def wait_for_emulator(attempts: int = 30) -> None:
    """compose waits for moto's healthcheck, but keep a short retry for manual runs."""
    sts = client("sts")
    for attempt in range(1, attempts + 1):
        try:
            sts.get_caller_identity()
            return
        except EndpointConnectionError:
            if attempt == attempts:
                raise
            time.sleep(1)


def ensure_kms_key(kms) -> str:
    """Return the key ARN behind KMS_ALIAS, creating key and alias if missing.

    moto generates random key ids, so the services are given the alias ARN
    (S3 accepts an alias ARN wherever it takes a key id for SSE-KMS).
    """
    try:
        return kms.describe_key(KeyId=KMS_ALIAS)["KeyMetadata"]["Arn"]
    except ClientError as err:
        if err.response["Error"]["Code"] != "NotFoundException":
            raise
    key = kms.create_key(Description="image-service local SSE-KMS key")["KeyMetadata"]
    kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key["KeyId"])
    return key["Arn"]


def ensure_queue(sqs, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Create (or find) a queue, apply attributes, return (url, arn)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def allow_send_from(source_service: str, source_arn: str, queue_arn: str) -> str:
    """A queue policy that lets one AWS service (S3, SNS) deliver to the queue."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": f"{source_service}.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
                }
            ],
        }
    )


def ensure_bucket(s3, key_arn: str) -> None:
    try:
        s3.head_bucket(Bucket=BUCKET)
    except ClientError:
        if REGION == "us-east-1":
            s3.create_bucket(Bucket=BUCKET)
        else:
            s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def main() -> int:
    wait_for_emulator()
    kms, s3, sqs, sns = client("kms"), client("s3"), client("sqs"), client("sns")

    key_arn = ensure_kms_key(kms)
    ensure_bucket(s3, key_arn)

    dlq_url, dlq_arn = ensure_queue(sqs, DLQ, {"MessageRetentionPeriod": "1209600"})
    queue_url, queue_arn = ensure_queue(
        sqs,
        QUEUE,
        {
            "VisibilityTimeout": VISIBILITY_TIMEOUT,
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": allow_send_from("s3", bucket_arn, queue_arn)}
    )
    # Direct uploads through presigned URLs land under uploads/ and become jobs.
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads-to-job-queue",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )

    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    tap_url, tap_arn = ensure_queue(sqs, TAP_QUEUE, {})
    sqs.set_queue_attributes(
        QueueUrl=tap_url, Attributes={"Policy": allow_send_from("sns", topic_arn, tap_arn)}
    )
    # subscribe is idempotent for the same endpoint; raw delivery keeps the
    # event JSON as the SQS body, as the terraform subscription does.
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=tap_arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    kms_alias_arn = f"{key_arn.split(':key/')[0]}:{KMS_ALIAS}"
    print("local AWS resources ready:")
    for name, value in [
        ("S3_BUCKET", BUCKET),
        ("S3_KMS_KEY_ID (alias ARN)", kms_alias_arn),
        ("KMS key ARN", key_arn),
        ("SQS_QUEUE_URL", queue_url),
        ("SQS_DLQ_URL", dlq_url),
        ("SNS_TOPIC_ARN", topic_arn),
        ("event tap queue", tap_url),
    ]:
        print(f"  {name:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
