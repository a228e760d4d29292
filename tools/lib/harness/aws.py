"""The AWS resources the service expects, made in the emulator (moto) by one function.

What terraform/ creates on AWS, closely enough for the service to take the same code path:

- a KMS key (behind an alias, when one is named); the bucket's default encryption is
  SSE-KMS with it, and public access is blocked
- the job queue and its dead-letter queue, joined by a redrive policy, and the same pair for
  the bulk lane (replays and reprocessing: `SQS_BULK_QUEUE_URL`, `SQS_BULK_DLQ_URL`)
- optionally, `uploads/` ObjectCreated events from the bucket to the job queue (direct
  and presigned uploads)
- the event topic with an SQS subscriber queue (the "tap"), so a caller can read every
  event the worker publishes; optionally a chat topic (AWS Chatbot's) with its own tap

Every step is idempotent: a second call with the same names finds what the first made
(docker/init-aws.py is re-run by every `docker compose up`). Names differ per caller:
`Names.for_run` gives a fresh set per run (the bench and chaos harnesses).

Needs boto3 (the moto image, .venv/test, .venv/bench and .venv/iam all have it).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import MutableMapping

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
# moto accepts any credentials until its IAM enforcement is switched on.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}
# Kept in the dead-letter queue as long as SQS allows (14 days), as terraform does.
DLQ_RETENTION_SECS = "1209600"


def use_emulator_credentials(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Only the emulator's dummy credentials in `environ`, so no real account or profile
    leaks in. Returns them, for a child process's environment."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        environ.pop(name, None)
    environ.update(EMULATOR_CREDENTIALS, AWS_DEFAULT_REGION=REGION)
    return dict(EMULATOR_CREDENTIALS)


def client(service: str, endpoint: str, region: str = REGION, credentials: tuple[str, str] | None = None,
           max_attempts: int | None = None):
    """A boto3 client for the emulator: `credentials` (access key id, secret), else the
    environment's; `max_attempts` 1 turns botocore's retries off (an answer is final)."""
    keys = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    config = Config(retries={"max_attempts": max_attempts}) if max_attempts else None
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **keys)


@dataclass(frozen=True)
class Names:
    bucket: str
    queue: str
    dlq: str
    topic: str
    tap: str
    kms_alias: str | None = None  # None: a new key per call, no alias
    chat_topic: str | None = None  # None: no chat topic
    chat_tap: str | None = None
    # The bulk lane and its dead-letter queue; empty: the job queue's name with `-bulk` and
    # `-bulk-dlq`, as terraform names them (`<name>-jobs-bulk`, `<name>-jobs-bulk-dlq`).
    bulk_queue: str = ""
    bulk_dlq: str = ""

    def __post_init__(self) -> None:
        if not self.bulk_queue:
            object.__setattr__(self, "bulk_queue", f"{self.queue}-bulk")
        if not self.bulk_dlq:
            object.__setattr__(self, "bulk_dlq", f"{self.queue}-bulk-dlq")

    @classmethod
    def for_run(cls, prefix: str, run: str | None = None) -> "Names":
        """A fresh set: `PREFIX-RUN` for bucket, queue and topic, `PREFIX-dlq-RUN`,
        `PREFIX-bulk-RUN` and `PREFIX-bulk-dlq-RUN` for the bulk lane, `PREFIX-events-RUN` for
        the tap."""
        run = run or uuid.uuid4().hex[:8]
        base = f"{prefix}-{run}"
        return cls(bucket=base, queue=base, dlq=f"{prefix}-dlq-{run}", topic=base, tap=f"{prefix}-events-{run}",
                   bulk_queue=f"{prefix}-bulk-{run}", bulk_dlq=f"{prefix}-bulk-dlq-{run}")


@dataclass(frozen=True)
class Resources:
    names: Names
    key_arn: str
    bucket_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    bulk_queue_url: str
    bulk_queue_arn: str
    bulk_dlq_url: str
    bulk_dlq_arn: str
    topic_arn: str
    tap_url: str
    tap_arn: str
    chat_topic_arn: str | None = None
    chat_tap_url: str | None = None
    chat_tap_arn: str | None = None

    @property
    def bucket(self) -> str:
        return self.names.bucket

    @property
    def alias_arn(self) -> str | None:
        """The ARN of the key's alias (S3 takes it wherever it takes a key id for SSE-KMS)."""
        if not self.names.kms_alias:
            return None
        return f"{self.key_arn.split(':key/')[0]}:{self.names.kms_alias}"

    def service_env(self, dlq: bool = True) -> dict[str, str]:
        """The service's settings for these resources (README's configuration table)."""
        env = {
            "S3_BUCKET": self.bucket,
            "S3_KMS_KEY_ID": self.key_arn,
            "SQS_QUEUE_URL": self.queue_url,
            "SQS_BULK_QUEUE_URL": self.bulk_queue_url,
            "SNS_TOPIC_ARN": self.topic_arn,
        }
        if dlq:
            env["SQS_DLQ_URL"] = self.dlq_url
            env["SQS_BULK_DLQ_URL"] = self.bulk_dlq_url
        if self.chat_topic_arn:
            env["SNS_CHAT_TOPIC_ARN"] = self.chat_topic_arn
        return env


def provision(endpoint: str, names: Names, *, region: str = REGION, credentials: tuple[str, str] | None = None,
              visibility_timeout: int | str | None = None, max_receive_count: int | str = 5,
              raw_delivery: bool = True, upload_events: bool = True,
              key_description: str = "image-service SSE-KMS key") -> Resources:
    """Makes (or finds) every resource of `names` in the emulator at `endpoint`.

    visibility_timeout: the job queue's and the bulk lane's, in seconds (None: SQS's default, 30 s).
    max_receive_count: receives before SQS moves a job message to its lane's dead-letter queue.
    raw_delivery: the taps get the event JSON as the SQS body, as the terraform
      subscription does; False keeps SNS's envelope around it.
    upload_events: send the bucket's `uploads/` ObjectCreated events to the job queue
      (S3 then also puts one s3:TestEvent on the queue)."""
    kms, s3, sqs, sns = (client(s, endpoint, region, credentials) for s in ("kms", "s3", "sqs", "sns"))
    key_arn = ensure_kms_key(kms, names.kms_alias, key_description)
    ensure_bucket(s3, names.bucket, key_arn, region)
    queue_url, queue_arn, dlq_url, dlq_arn = ensure_lane(sqs, names.queue, names.dlq, visibility_timeout, max_receive_count)
    bulk_url, bulk_arn, bulk_dlq_url, bulk_dlq_arn = ensure_lane(
        sqs, names.bulk_queue, names.bulk_dlq, visibility_timeout, max_receive_count)
    bucket_arn = f"arn:aws:s3:::{names.bucket}"
    if upload_events:
        send_uploads_to_queue(s3, sqs, names.bucket, bucket_arn, queue_url, queue_arn)
    topic_arn, tap_url, tap_arn = ensure_topic_with_tap(sns, sqs, names.topic, names.tap, raw_delivery)
    chat = (None, None, None)
    if names.chat_topic:
        chat = ensure_topic_with_tap(sns, sqs, names.chat_topic, names.chat_tap or f"{names.chat_topic}-tap", raw_delivery)
    return Resources(names, key_arn, bucket_arn, queue_url, queue_arn, dlq_url, dlq_arn,
                     bulk_queue_url=bulk_url, bulk_queue_arn=bulk_arn, bulk_dlq_url=bulk_dlq_url, bulk_dlq_arn=bulk_dlq_arn,
                     topic_arn=topic_arn, tap_url=tap_url, tap_arn=tap_arn,
                     chat_topic_arn=chat[0], chat_tap_url=chat[1], chat_tap_arn=chat[2])


def ensure_lane(sqs, queue: str, dlq: str, visibility_timeout: int | str | None,
                max_receive_count: int | str) -> tuple[str, str, str, str]:
    """A queue and its dead-letter queue, joined by a redrive policy after
    `max_receive_count` receives, the DLQ keeping messages as long as SQS allows;
    returns (queue url, queue arn, dlq url, dlq arn)."""
    dlq_url, dlq_arn = ensure_queue(sqs, dlq, {"MessageRetentionPeriod": DLQ_RETENTION_SECS})
    attributes = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})}
    if visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(visibility_timeout)
    queue_url, queue_arn = ensure_queue(sqs, queue, attributes)
    return queue_url, queue_arn, dlq_url, dlq_arn


def ensure_kms_key(kms, alias: str | None, description: str) -> str:
    """The ARN of the key behind `alias`, making key and alias if missing; without an
    alias, a new key."""
    if alias:
        try:
            return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "NotFoundException":
                raise
    key = kms.create_key(Description=description)["KeyMetadata"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"]


def ensure_bucket(s3, bucket: str, key_arn: str, region: str) -> None:
    """The bucket, SSE-KMS with `key_arn` by default, public access blocked."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **where)
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    block = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)


def ensure_queue(sqs, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Makes (or finds) a queue, applies `attributes`, returns (url, arn)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def allow_send_from(source_service: str, source_arn: str, queue_arn: str) -> str:
    """A queue policy that lets one AWS service (S3, SNS) deliver to the queue."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": f"{source_service}.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def send_uploads_to_queue(s3, sqs, bucket: str, bucket_arn: str, queue_url: str, queue_arn: str) -> None:
    """Objects created under uploads/ (direct and presigned uploads) become job messages."""
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": allow_send_from("s3", bucket_arn, queue_arn)})
    rule = {
        "Id": "uploads-to-job-queue",
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [rule]})


def ensure_topic_with_tap(sns, sqs, topic: str, tap: str, raw_delivery: bool) -> tuple[str, str, str]:
    """A topic with one SQS subscriber queue; returns (topic arn, tap url, tap arn)."""
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    tap_url, tap_arn = ensure_queue(sqs, tap, {})
    sqs.set_queue_attributes(QueueUrl=tap_url, Attributes={"Policy": allow_send_from("sns", topic_arn, tap_arn)})
    # subscribe is idempotent for the same endpoint.
    attributes = {"RawMessageDelivery": "true"} if raw_delivery else {}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=tap_arn, Attributes=attributes)
    return topic_arn, tap_url, tap_arn
