"""Least privilege, proven: the api and worker task-role policies Terraform deploys
(terraform/modules/iam/policies/{api,worker}.json.tpl, rendered with the emulator's ARNs) are
enough for real jobs end to end and for the api's admin DLQ replay, and they refuse what the
roles must not do.

How: moto 5.2.5 (the suite's pin) with IAM enforcement on (`POST /moto-api/reset-auth`, body
"0": no more requests without auth); one IAM user per role holds its rendered policy inline, as
aws_iam_role_policy attaches it to the task role; `image-service api` and `image-service worker`
run as two processes, each with its own user's access key.

What moto 5.2.5 enforces (moto/core/authorization.py, moto/core/responses.py,
moto/iam/access_control.py):
- Every request to S3, SQS, SNS, KMS and IAM must be SigV4-signed with a known IAM access key:
  an unknown key is InvalidClientTokenId, a wrong secret SignatureDoesNotMatch.
- The caller's identity policies (inline, attached, via groups): Effect, Action and Resource
  with * wildcards, an explicit Deny wins.
- The resource matched: S3 the real bucket or object ARN, with IAM's action names
  (CreateMultipartUpload, UploadPart, CompleteMultipartUpload and CopyObject as s3:PutObject,
  HeadObject as s3:GetObject, AbortMultipartUpload as itself); SQS the queue ARN.
- SNS and KMS: every request is matched against the resource "*", so a policy scoped to one
  topic or key (ours) is refused everything (test_stock_moto_cannot_scope_sns_or_kms). The
  emulator here (emulator.py) adds that lookup, checks batch calls as the action AWS checks
  (DeleteMessageBatch as sqs:DeleteMessage), and checks signatures of form-encoded requests
  over the bytes sent; without those three corrections the worker's Publish and its batched
  acknowledgements are refused under a correct policy.

What it does not enforce, so this test does not prove:
- Conditions in identity policies: moto has no request context for them, so a conditioned
  statement applies as if it had no Condition. The api's s3:ListBucket prefix condition and the
  worker's tag-key condition on s3:PutObjectTagging (only image-service-retention-days) are
  therefore checked only in tests/infra/terraform (test_bucket_listing_is_limited_to_an_images_
  prefixes, test_retention_tag_is_the_one_the_worker_may_set).
- Resource-based policies: bucket, queue, topic and key policies are not evaluated.
- KMS on behalf of S3: moto stores and serves SSE-KMS objects without authorizing the caller
  for the key, so kms:GenerateDataKey and kms:Decrypt are proven only by direct KMS calls below,
  not on the object path as AWS checks them. Those direct calls pass only because moto does not
  evaluate the grants' kms:ViaService condition (S3, SQS and SNS only): on AWS a direct call is
  refused, which tests/infra/terraform (test_kms_grants_hold_only_through_...) checks instead.
- CopyObject's read of the source: moto checks only s3:PutObject on the destination, so the
  worker's s3:GetObject on uploads/* is not exercised.
- Presigned (query-string signed) requests: moto's IAM check reads only the Authorization
  header and answers a presigned request with HTTP 500 (test_moto_cannot_authorize_presigned_
  requests). A presigned PUT of POST /v1/uploads acts with the api's permissions, so the direct
  upload test makes the same PUT (api credentials, Content-Type, no encryption headers) signed
  in the header instead. The bucket policy that must let such a header-less PUT through is
  checked in tests/infra/terraform (test_media_bucket_policy_admits_presigned_puts_...).
- S3 answering 403 instead of 404 for a missing key to a caller without s3:ListBucket (neither
  role has it); moto answers NoSuchKey.
- The ECS agent: the worker's scale-in protection (ECS_AGENT_URI) is not run here.
- SQS move tasks: moto 5.2.5 has no StartMessageMoveTask or ListMessageMoveTasks, so the api's
  admin DLQ replay is run in copy mode here (receive from both DLQs, send to the bulk lane,
  delete); those two grants are checked only against the contract
  (tests/infra/terraform/test_structure.py).
"""

from __future__ import annotations

import json
import os
import re
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from conftest import ADMIN_API_KEY, ROOT, Creds, Stack, make_client

ORIGINAL = ROOT / "testdata" / "orient3.jpg"
JOB_DEADLINE_SECS = 60


def error_code(err: ClientError) -> str:
    # For JSON protocol services (SQS, KMS) moto answers IAM errors in XML, which botocore
    # cannot parse: it reports the HTTP status as the code and the XML as the message.
    code = err.response.get("Error", {}).get("Code", "")
    found = re.search(r"<Code>(\w+)</Code>", str(err))
    return found.group(1) if code.isdigit() and found else code


def denial(call) -> str:
    """Run `call`, which must be refused by IAM; return the error text for further checks."""
    with pytest.raises(ClientError) as caught:
        call()
    err = caught.value
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error_code(err)
    assert status == 403 and code in ("AccessDenied", "AuthorizationError"), f"expected an IAM denial, got HTTP {status} {code}: {err}"
    return str(err)


# --- the setup is what it claims ------------------------------------------------------------


def test_stock_moto_cannot_scope_sns_or_kms(stack: Stack):
    """Why emulator.py exists; fails once moto resolves SNS and KMS resources itself."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.kms.responses import KmsResponse
    from moto.sns.responses import SNSResponse
    from moto.sqs.responses import SQSResponse

    assert hasattr(SQSResponse, "_determine_resource")
    assert not hasattr(SNSResponse, "_determine_resource"), "moto resolves SNS resources now: drop the SNS shim"
    assert not hasattr(KmsResponse, "_determine_resource"), "moto resolves KMS resources now: drop the KMS shim"
    worker = IAMPolicy(stack.policies["worker"])
    # What stock moto asks for every SNS/KMS request: not granted on "*"...
    assert worker.is_action_permitted("sns:Publish", "*") == PermissionResult.NEUTRAL
    assert worker.is_action_permitted("kms:GenerateDataKey", "*") == PermissionResult.NEUTRAL
    # ...while the real resource is.
    assert worker.is_action_permitted("sns:Publish", stack.topic_arn) == PermissionResult.PERMITTED
    assert worker.is_action_permitted("kms:GenerateDataKey", stack.kms_key_arn) == PermissionResult.PERMITTED


def test_moto_cannot_authorize_presigned_requests(stack: Stack):
    """Why the direct upload is header-signed; fails once moto judges presigned requests, and
    then the upload test should PUT to a real presigned URL."""
    url = stack.client("s3", "api").generate_presigned_url(
        "put_object", Params={"Bucket": stack.bucket, "Key": f"uploads/{IMAGE}", "ContentType": "image/jpeg"}, ExpiresIn=900
    )
    answer = requests.put(url, data=b"x", headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert answer.status_code == 500, f"moto answers presigned PUTs now ({answer.status_code}): test a real one"


def test_enforcement_is_on(stack: Stack):
    """Unsigned-by-IAM keys and wrong secrets are refused: every later allow/deny is IAM's."""
    with pytest.raises(ClientError) as caught:
        stack.client("sqs", "setup").get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])
    assert error_code(caught.value) == "InvalidClientTokenId"

    forged = Creds(stack.creds["worker"].access_key_id, "not-the-secret")
    with pytest.raises(ClientError) as caught:
        make_client(stack.endpoint, "sqs", forged).get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])
    assert error_code(caught.value) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("secret", ["right", "wrong"])
def test_form_encoded_signatures_are_checked_over_the_sent_bytes(stack: Stack, secret):
    """A query-protocol body encoded as the Rust SDK does it (space as %20) passes moto's
    signature check with the right secret (emulator.py) and still fails with a wrong one."""
    creds = stack.creds["worker"]
    key = creds.secret_access_key if secret == "right" else "not-the-secret"
    topic = quote(stack.topic_arn, safe="")
    body = f"Action=Publish&Version=2010-03-31&TopicArn={topic}&Subject=image.processed%20sig-check&Message=%7B%7D"
    signed = AWSRequest(method="POST", url=f"{stack.endpoint}/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(creds.access_key_id, key), "sns", "us-east-1").add_auth(signed)
    answer = requests.post(f"{stack.endpoint}/", data=body, headers=dict(signed.headers), timeout=5)
    if secret == "right":
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in answer.text, answer.text


def test_users_hold_exactly_the_rendered_templates(stack: Stack):
    iam = stack.client("iam", "admin")
    for role, rendered in stack.policies.items():
        stored = iam.get_user_policy(UserName=role, PolicyName=f"{role}-least-privilege")["PolicyDocument"]
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert stored == json.loads(rendered)
        assert iam.list_attached_user_policies(UserName=role)["AttachedPolicies"] == []
        assert iam.list_groups_for_user(UserName=role)["Groups"] == []


# --- (a) a real job succeeds under the two policies -----------------------------------------


def wait_for_job(services, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_DEADLINE_SECS
    while True:
        job = services.http.get(f"{services.api_url}/v1/jobs/{job_id}", timeout=5).json()
        if job["status"] in ("succeeded", "failed", "dead") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def assert_processed(stack: Stack, services, events, job_id: str) -> tuple[dict, dict]:
    """The job succeeded, its original and variants are stored SSE-KMS with the service key,
    and its image.processed event reached the topic's SQS subscriber."""
    job = wait_for_job(services, job_id)
    assert job["status"] == "succeeded", f"job ended {job}\n{services.tail()}"
    image_id = job["image_id"]

    s3 = stack.client("s3", "admin")
    image = services.http.get(f"{services.api_url}/v1/images/{image_id}", timeout=5).json()
    assert len(image["variants"]) == 3, image
    keys = [f"originals/{image_id}"] + [v["key"] for v in image["variants"]]
    for key in keys:
        assert key.startswith(("originals/", f"variants/{image_id}/")), key
        head = s3.head_object(Bucket=stack.bucket, Key=key)
        assert head["ContentLength"] > 0
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == stack.kms_key_arn, key

    event = events.wait(lambda envelope, body: body["job_id"] == job_id)
    assert event is not None, f"no event for job {job_id} on the subscriber queue\n{services.tail()}"
    envelope, body = event
    assert envelope["TopicArn"] == stack.topic_arn
    assert envelope["MessageAttributes"]["event"]["Value"] == "image.processed"
    assert body["event"] == "image.processed" and body["image_id"] == image_id
    assert {v["key"] for v in body["variants"]} == set(keys[1:])
    return job, body


def assert_queue_drained(stack: Stack, services) -> None:
    """The worker acknowledged every message (batched sqs:DeleteMessage), S3's test event too."""
    sqs = stack.client("sqs", "admin")
    empty = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    deadline = time.monotonic() + 10
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=list(empty))["Attributes"]
        if attributes == empty or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert attributes == empty, f"messages left on the job queue\n{services.tail()}"


def upload_original(services) -> str:
    """POST /v1/images with the test photo; returns the accepted job's id."""
    answer = services.http.post(
        f"{services.api_url}/v1/images",
        data=ORIGINAL.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert answer.status_code == 202, f"{answer.status_code} {answer.text}\n{services.tail()}"
    return answer.json()["id"]


def assert_nothing_refused(services) -> None:
    for role, path in services.logs.items():
        text = path.read_text(errors="replace").splitlines()
        refused = [line for line in text if re.search(r"AccessDenied|AuthorizationError|not authorized|SignatureDoesNotMatch", line)]
        assert refused == [], f"{role} was refused something:\n" + "\n".join(refused[:5])


def test_end_to_end_job_succeeds_under_least_privilege(stack: Stack, services, events, chat):
    """POST /v1/images to the api (s3:PutObject originals/*, sqs:SendMessage), then the worker
    (sqs:GetQueueAttributes at start, ReceiveMessage, ChangeMessageVisibility for the
    heartbeat, s3:GetObject originals/*, s3:PutObject variants/*, sns:Publish on the event
    topic and, image.processed being in CHAT_EVENTS here, on the chat topic, and
    DeleteMessageBatch as sqs:DeleteMessage)."""
    job, body = assert_processed(stack, services, events, upload_original(services))
    tags = stack.client("s3", "admin").get_object_tagging(Bucket=stack.bucket, Key=f"originals/{job['image_id']}")
    assert tags["TagSet"] == [{"Key": "image-service-retention-days", "Value": "30"}], "tagged for the lifecycle rule"
    notification = chat.wait(lambda envelope, note: note["id"] == body["event_id"])
    assert notification is not None, f"no chat notification for event {body['event_id']}\n{services.tail()}"
    envelope, note = notification
    assert envelope["TopicArn"] == stack.chat_topic_arn
    assert note["metadata"]["eventType"] == "image.processed"
    assert_queue_drained(stack, services)
    assert_nothing_refused(services)


def test_api_is_ready_under_least_privilege(stack: Stack, services):
    """/readyz probes the store by listing originals/ (the api's s3:ListBucket on its prefixes).
    A GET of a key outside the api's prefixes would be refused (403, on AWS and here alike), and
    the api would never report ready."""
    response = requests.get(f"{services.api_url}/readyz", timeout=10)
    assert response.status_code == 200, f"{response.text}\n{services.tail()}"
    assert response.json()["checks"] == {"database": True, "queue": True, "store": True}


def test_direct_upload_is_processed_under_least_privilege(stack: Stack, services, events):
    """A client PUT under uploads/ with what the api's presigned URL carries (its s3:PutObject
    on uploads/*, Content-Type, no encryption headers: the bucket default encrypts it); S3
    notifies the job queue; the worker copies the object to originals/ (s3:GetObject uploads/*
    + s3:PutObject originals/* on AWS; moto checks only the latter) and processes it."""
    known = set(events.events)
    data = ORIGINAL.read_bytes()
    stack.client("s3", "api").put_object(Bucket=stack.bucket, Key="uploads/direct upload (1).jpg", Body=data, ContentType="image/jpeg")

    event = events.wait(lambda envelope, body: body["job_id"] not in known, timeout=JOB_DEADLINE_SECS)
    assert event is not None, f"no event for the direct upload\n{services.tail()}"
    job, body = assert_processed(stack, services, events, event[1]["job_id"])
    original = stack.client("s3", "admin").get_object(Bucket=stack.bucket, Key=f"originals/{job['image_id']}")["Body"].read()
    assert original == data
    assert_queue_drained(stack, services)
    assert_nothing_refused(services)


def test_presigned_upload_is_signed_by_the_api_and_processed_under_least_privilege(stack: Stack, services, events):
    """POST /v1/uploads: the api presigns a PUT to uploads/{job_id} with its own credentials
    (so the URL acts with the api role's s3:PutObject on uploads/*), valid UPLOAD_URL_TTL_SECS
    (900 by default) and signed with Content-Type and Content-Length. moto cannot serve the
    presigned URL under enforcement, so the same PUT, with the headers the api handed out, is
    signed in the header with the api's keys; the worker then copies uploads/{job_id} to
    originals/ and processes the job."""
    data = ORIGINAL.read_bytes()
    answer = services.http.post(
        f"{services.api_url}/v1/uploads", json={"content_type": "image/jpeg", "content_length": len(data)}, timeout=10
    )
    assert answer.status_code == 201, f"{answer.status_code} {answer.text}\n{services.tail()}"
    ticket = answer.json()
    job_id, upload = ticket["job"]["id"], ticket["upload"]
    assert upload["method"] == "PUT"
    url = urlsplit(upload["url"])
    assert url.path.endswith(f"/{stack.bucket}/uploads/{job_id}") or url.path == f"/uploads/{job_id}", upload["url"]
    query = parse_qs(url.query)
    assert query["X-Amz-Credential"][0].startswith(stack.creds["api"].access_key_id + "/"), "signed by the api's identity"
    assert query["X-Amz-Expires"] == ["900"]
    assert {"content-type", "content-length"} <= set(query["X-Amz-SignedHeaders"][0].split(";"))
    headers = upload["headers"]
    assert headers["content-type"] == "image/jpeg" and headers["content-length"] == str(len(data))

    sse = {}
    if "x-amz-server-side-encryption" in headers:
        sse = dict(
            ServerSideEncryption=headers["x-amz-server-side-encryption"],
            SSEKMSKeyId=headers["x-amz-server-side-encryption-aws-kms-key-id"],
        )
    stack.client("s3", "api").put_object(
        Bucket=stack.bucket, Key=f"uploads/{job_id}", Body=data, ContentType=headers["content-type"], **sse
    )

    job, _ = assert_processed(stack, services, events, job_id)
    original = stack.client("s3", "admin").get_object(Bucket=stack.bucket, Key=f"originals/{job['image_id']}")["Body"].read()
    assert original == data
    assert_queue_drained(stack, services)
    assert_nothing_refused(services)


def test_delete_erases_an_image_under_least_privilege(stack: Stack, services, events):
    """DELETE /v1/images/{id} (s3:ListBucket under the image's prefixes, s3:DeleteObject on
    originals/* and variants/*, sns:Publish of image.deleted) leaves no object of the image."""
    job, _ = assert_processed(stack, services, events, upload_original(services))
    image_id = job["image_id"]

    deleted = services.http.delete(f"{services.api_url}/v1/images/{image_id}", timeout=30)

    assert deleted.status_code == 204, f"{deleted.status_code} {deleted.text}\n{services.tail()}"
    listed = stack.client("s3", "admin").list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    left = [o["Key"] for o in listed if image_id in o["Key"]]
    assert left == [], f"objects of the deleted image remain: {left}\n{services.tail()}"
    event = events.wait(lambda envelope, body: body["event"] == "image.deleted" and body["image_id"] == image_id)
    assert event is not None, f"no image.deleted event\n{services.tail()}"
    assert_nothing_refused(services)


def test_api_can_abort_its_multipart_uploads(stack: Stack, services):
    """An upload over MAX_UPLOAD_BYTES (9 MiB here) that already started a multipart upload is
    answered 413, and the api aborts the multipart upload so no parts are left behind."""
    s3 = stack.client("s3", "admin")

    def body():
        # Starts like a JPEG (the api sniffs the first bytes and answers 415 otherwise), then
        # random bytes past the limit.
        yield ORIGINAL.read_bytes()[:4096]
        chunk = os.urandom(1024 * 1024)
        for _ in range(12):
            yield chunk

    try:
        answer = services.http.post(f"{services.api_url}/v1/images", data=body(), headers={"Content-Type": "image/jpeg"}, timeout=30)
        assert answer.status_code == 413, f"{answer.status_code} {answer.text}"
    except requests.ConnectionError:
        pass  # the api may answer and close before the client has sent everything
    deadline = time.monotonic() + 3
    while True:
        left = s3.list_multipart_uploads(Bucket=stack.bucket, Prefix="originals/").get("Uploads", [])
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == [], f"multipart uploads left behind: {[u['Key'] for u in left]}"


def test_api_admin_replay_redrives_the_dlq_and_publishes_its_summary(stack: Stack, services, events, chat):
    """POST /v1/admin/replay/dlq runs the replay inside the api task, on both dead-letter queues:
    sqs:GetQueueAttributes on each DLQ for its depth, then (copy mode) ReceiveMessage on it,
    SendMessageBatch to the bulk lane as sqs:SendMessage, DeleteMessageBatch on the DLQ as
    sqs:DeleteMessage, and one replay.summary published to the event topic and the chat topic."""
    admin = stack.client("sqs", "admin")
    # Not jobs: the worker acknowledges them as unparseable once they are on the bulk lane.
    admin.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps({"iam_check": "dead letter"}))
    admin.send_message(QueueUrl=stack.bulk_dlq_url, MessageBody=json.dumps({"iam_check": "dead replay"}))

    answer = services.http.post(
        f"{services.api_url}/v1/admin/replay/dlq",
        json={"mode": "copy"},
        headers={"Authorization": f"Bearer {ADMIN_API_KEY}"},
        timeout=60,
    )
    assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{services.tail()}"
    summary = answer.json()
    assert summary["operation"] == "replay dlq" and summary["dry_run"] is False, summary
    assert summary["counts"].get("moved") == 2, summary
    for dlq in (stack.dlq_url, stack.bulk_dlq_url):
        left = admin.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert left == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, (dlq, left)

    event = events.wait(lambda envelope, body: body["event"] == "replay.summary" and body["summary"] == summary)
    assert event is not None, f"no replay.summary on the event topic\n{services.tail()}"
    envelope, body = event
    assert envelope["TopicArn"] == stack.topic_arn
    notification = chat.wait(lambda envelope, note: note["id"] == body["event_id"])
    assert notification is not None, f"no replay.summary on the chat topic\n{services.tail()}"
    assert notification[0]["TopicArn"] == stack.chat_topic_arn
    assert notification[1]["metadata"]["eventType"] == "replay.summary"
    assert_nothing_refused(services)


# --- (b) what the roles must not do is refused -----------------------------------------------

IMAGE = "0190aaaa-0000-7000-8000-000000000000"
# What the worker puts on an original once its job succeeded under a 30-day retention; the media
# bucket's lifecycle rule for 30 expires it (terraform/modules/storage/s3.tf).
RETAINED_IMAGE = "0190aaaa-0000-7000-8000-0000000000a1"
RETENTION_TAGGING = {"TagSet": [{"Key": "image-service-retention-days", "Value": "30"}]}

DENIED = {
    # The worker: no bucket administration, nothing outside its prefixes, no other topic or key.
    "worker deletes the bucket": ("worker", "s3", lambda s: ("delete_bucket", dict(Bucket=s.bucket))),
    "worker deletes an original": ("worker", "s3", lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"originals/{IMAGE}"))),
    "worker rewrites the bucket policy": (
        "worker",
        "s3",
        lambda s: ("put_bucket_policy", dict(Bucket=s.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))),
    ),
    "worker lists the bucket": ("worker", "s3", lambda s: ("list_objects_v2", dict(Bucket=s.bucket))),
    "worker writes outside variants/, private/ and originals/": (
        "worker",
        "s3",
        lambda s: ("put_object", dict(Bucket=s.bucket, Key=f"uploads/{IMAGE}", Body=b"x")),
    ),
    "worker publishes to another topic": (
        "worker",
        "sns",
        lambda s: ("publish", dict(TopicArn=s.other_topic_arn, Message="{}")),
    ),
    "worker subscribes to the event topic": (
        "worker",
        "sns",
        lambda s: ("subscribe", dict(TopicArn=s.topic_arn, Protocol="sqs", Endpoint=s.dlq_arn)),
    ),
    "worker enqueues jobs": ("worker", "sqs", lambda s: ("send_message", dict(QueueUrl=s.queue_url, MessageBody="{}"))),
    "worker purges the job queue": ("worker", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.queue_url))),
    "worker reads the DLQ": ("worker", "sqs", lambda s: ("receive_message", dict(QueueUrl=s.dlq_url))),
    # The bulk lane (replays, reprocessing): consumed like the job queue, nothing more.
    "worker enqueues on the bulk lane": (
        "worker",
        "sqs",
        lambda s: ("send_message", dict(QueueUrl=s.bulk_queue_url, MessageBody="{}")),
    ),
    "worker purges the bulk lane": ("worker", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.bulk_queue_url))),
    "worker reads the bulk DLQ": ("worker", "sqs", lambda s: ("receive_message", dict(QueueUrl=s.bulk_dlq_url))),
    "worker uses another KMS key": (
        "worker",
        "kms",
        lambda s: ("generate_data_key", dict(KeyId=s.other_kms_key_arn, KeySpec="AES_256")),
    ),
    "worker schedules the key's deletion": (
        "worker",
        "kms",
        lambda s: ("schedule_key_deletion", dict(KeyId=s.kms_key_arn, PendingWindowInDays=7)),
    ),
    "worker mints itself a key": ("worker", "iam", lambda s: ("create_access_key", dict(UserName="worker"))),
    # Originals retention: the worker tags originals only; variants are kept, uploads are transient.
    "worker tags a variant": (
        "worker",
        "s3",
        lambda s: ("put_object_tagging", dict(Bucket=s.bucket, Key=f"variants/{IMAGE}/x.webp", Tagging=RETENTION_TAGGING)),
    ),
    # Signed-mode variants live under private/ (issue #21), with the same grants as variants/.
    "worker tags a private variant": (
        "worker",
        "s3",
        lambda s: ("put_object_tagging", dict(Bucket=s.bucket, Key=f"private/{IMAGE}/x.webp", Tagging=RETENTION_TAGGING)),
    ),
    "worker tags an upload": (
        "worker",
        "s3",
        lambda s: ("put_object_tagging", dict(Bucket=s.bucket, Key=f"uploads/{IMAGE}", Tagging=RETENTION_TAGGING)),
    ),
    # The api: it enqueues and stores originals, and its admin endpoints redrive the DLQ and
    # publish the run's summary; it deletes an image's objects (DELETE /v1/images/{id}), but it
    # does not consume jobs, purge, publish elsewhere or delete the bucket.
    "api receives from the job queue": (
        "api",
        "sqs",
        lambda s: ("receive_message", dict(QueueUrl=s.queue_url, WaitTimeSeconds=0)),
    ),
    "api sends to the DLQ": ("api", "sqs", lambda s: ("send_message", dict(QueueUrl=s.dlq_url, MessageBody="{}"))),
    "api purges the DLQ": ("api", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.dlq_url))),
    "api purges the job queue": ("api", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.queue_url))),
    # Its replays send to the bulk lane and redrive the bulk DLQ; it never consumes or purges them.
    "api receives from the bulk lane": (
        "api",
        "sqs",
        lambda s: ("receive_message", dict(QueueUrl=s.bulk_queue_url, WaitTimeSeconds=0)),
    ),
    "api sends to the bulk DLQ": ("api", "sqs", lambda s: ("send_message", dict(QueueUrl=s.bulk_dlq_url, MessageBody="{}"))),
    "api purges the bulk lane": ("api", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.bulk_queue_url))),
    "api purges the bulk DLQ": ("api", "sqs", lambda s: ("purge_queue", dict(QueueUrl=s.bulk_dlq_url))),
    "api publishes to another topic": (
        "api",
        "sns",
        lambda s: ("publish", dict(TopicArn=s.other_topic_arn, Message="{}")),
    ),
    "api subscribes to the chat topic": (
        "api",
        "sns",
        lambda s: ("subscribe", dict(TopicArn=s.chat_topic_arn, Protocol="sqs", Endpoint=s.dlq_arn)),
    ),
    "api tags an original": (
        "api",
        "s3",
        lambda s: ("put_object_tagging", dict(Bucket=s.bucket, Key=f"originals/{IMAGE}", Tagging=RETENTION_TAGGING)),
    ),
    "api writes variants": ("api", "s3", lambda s: ("put_object", dict(Bucket=s.bucket, Key=f"variants/{IMAGE}/x.webp", Body=b"x"))),
    "api writes private variants": ("api", "s3", lambda s: ("put_object", dict(Bucket=s.bucket, Key=f"private/{IMAGE}/x.webp", Body=b"x"))),
    "api deletes the bucket": ("api", "s3", lambda s: ("delete_bucket", dict(Bucket=s.bucket))),
    # Presigned uploads: the api only signs PUTs to uploads/; what clients upload is the worker's.
    "api reads an upload": ("api", "s3", lambda s: ("get_object", dict(Bucket=s.bucket, Key=f"uploads/{IMAGE}"))),
}


@pytest.mark.parametrize("case", sorted(DENIED))
def test_forbidden_action_is_denied(stack: Stack, case):
    who, service, request = DENIED[case]
    operation, params = request(stack)
    text = denial(lambda: getattr(stack.client(service, who), operation)(**params))
    if service != "s3":  # S3 says only "Access Denied"; the others name the principal and action
        assert f":user/{who} is not authorized to perform: {service}:" in text, text


# The same kinds of call on the role's own resources go through, so the denials above come from
# the resource and action scoping, not from a blanket refusal.
ALLOWED = {
    "worker acknowledges in batches": (
        "worker",
        "sqs",
        lambda s: ("delete_message_batch", dict(QueueUrl=s.queue_url, Entries=[{"Id": "0", "ReceiptHandle": "not-a-receipt"}])),
    ),
    "worker publishes to the event topic": ("worker", "sns", lambda s: ("publish", dict(TopicArn=s.topic_arn, Message="{}"))),
    "worker publishes to the chat topic": ("worker", "sns", lambda s: ("publish", dict(TopicArn=s.chat_topic_arn, Message="{}"))),
    "worker reads the redrive policy": (
        "worker",
        "sqs",
        lambda s: ("get_queue_attributes", dict(QueueUrl=s.queue_url, AttributeNames=["RedrivePolicy"])),
    ),
    "worker acknowledges bulk jobs in batches": (
        "worker",
        "sqs",
        lambda s: ("delete_message_batch", dict(QueueUrl=s.bulk_queue_url, Entries=[{"Id": "0", "ReceiptHandle": "not-a-receipt"}])),
    ),
    "worker reads the bulk lane's redrive policy": (
        "worker",
        "sqs",
        lambda s: ("get_queue_attributes", dict(QueueUrl=s.bulk_queue_url, AttributeNames=["RedrivePolicy"])),
    ),
    "worker uses the service key": (
        "worker",
        "kms",
        lambda s: ("generate_data_key", dict(KeyId=s.kms_key_arn, KeySpec="AES_256")),
    ),
    # Discarding the variants a job stored for an image deleted while it ran (by key: the
    # worker lists nothing).
    "worker deletes a variant": (
        "worker",
        "s3",
        lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"variants/{IMAGE}/x.webp")),
    ),
    "worker deletes a private variant": (
        "worker",
        "s3",
        lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"private/{IMAGE}/x.webp")),
    ),
    # A job of a tenant in signed delivery mode stores its variants under private/.
    "worker stores a private variant": (
        "worker",
        "s3",
        lambda s: (
            "put_object",
            dict(Bucket=s.bucket, Key=f"private/{IMAGE}/x.webp", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=s.kms_key_arn),
        ),
    ),
    # DELETE /v1/images/{id}.
    "api deletes an original": ("api", "s3", lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"originals/{IMAGE}"))),
    "api deletes a variant": ("api", "s3", lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"variants/{IMAGE}/x.webp"))),
    "api deletes a private variant": ("api", "s3", lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"private/{IMAGE}/x.webp"))),
    "api lists an image's private variants": (
        "api",
        "s3",
        lambda s: ("list_objects_v2", dict(Bucket=s.bucket, Prefix=f"private/{IMAGE}/")),
    ),
    "api lists an image's original": (
        "api",
        "s3",
        lambda s: ("list_objects_v2", dict(Bucket=s.bucket, Prefix=f"originals/{IMAGE}")),
    ),
    # After copying uploads/{job_id} to originals/{image_id}.
    "worker deletes a processed upload": (
        "worker",
        "s3",
        lambda s: ("delete_object", dict(Bucket=s.bucket, Key=f"uploads/{IMAGE}")),
    ),
    "api uses the service key": ("api", "kms", lambda s: ("generate_data_key", dict(KeyId=s.kms_key_arn, KeySpec="AES_256"))),
    # The admin endpoints' replays: a DLQ redrive and a replay.summary per run.
    "api receives from the DLQ": (
        "api",
        "sqs",
        lambda s: ("receive_message", dict(QueueUrl=s.dlq_url, WaitTimeSeconds=0)),
    ),
    "api reads the DLQ's depth": (
        "api",
        "sqs",
        lambda s: ("get_queue_attributes", dict(QueueUrl=s.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])),
    ),
    "api receives from the bulk DLQ": (
        "api",
        "sqs",
        lambda s: ("receive_message", dict(QueueUrl=s.bulk_dlq_url, WaitTimeSeconds=0)),
    ),
    "api reads the bulk DLQ's depth": (
        "api",
        "sqs",
        lambda s: ("get_queue_attributes", dict(QueueUrl=s.bulk_dlq_url, AttributeNames=["ApproximateNumberOfMessages"])),
    ),
    # A move task's destination: the bulk lane's ARN.
    "api reads the bulk lane's ARN": (
        "api",
        "sqs",
        lambda s: ("get_queue_attributes", dict(QueueUrl=s.bulk_queue_url, AttributeNames=["QueueArn"])),
    ),
    "api publishes to the event topic": ("api", "sns", lambda s: ("publish", dict(TopicArn=s.topic_arn, Message="{}"))),
    "api publishes to the chat topic": ("api", "sns", lambda s: ("publish", dict(TopicArn=s.chat_topic_arn, Message="{}"))),
    "api stores an original": (
        "api",
        "s3",
        lambda s: (
            "put_object",
            dict(Bucket=s.bucket, Key=f"originals/{IMAGE}", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=s.kms_key_arn),
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_own_resource_is_allowed(stack: Stack, case):
    who, service, request = ALLOWED[case]
    operation, params = request(stack)
    getattr(stack.client(service, who), operation)(**params)


def test_worker_decrypts_only_with_the_service_key(stack: Stack):
    admin = stack.client("kms", "admin")
    worker = stack.client("kms", "worker")
    ours = admin.encrypt(KeyId=stack.kms_key_arn, Plaintext=b"ours")["CiphertextBlob"]
    theirs = admin.encrypt(KeyId=stack.other_kms_key_arn, Plaintext=b"theirs")["CiphertextBlob"]
    assert worker.decrypt(CiphertextBlob=ours)["Plaintext"] == b"ours"
    denial(lambda: worker.decrypt(CiphertextBlob=theirs))


def test_worker_tags_an_original_for_retention(stack: Stack):
    """s3:PutObjectTagging on originals/*: tagging needs an existing object (moto answers NoSuchKey
    otherwise), so this allowed case stores one first. The same call on a variant or an upload is
    refused (DENIED above), whether or not the object exists: IAM is checked first."""
    admin = stack.client("s3", "admin")
    key = f"originals/{RETAINED_IMAGE}"
    admin.put_object(Bucket=stack.bucket, Key=key, Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=stack.kms_key_arn)

    stack.client("s3", "worker").put_object_tagging(Bucket=stack.bucket, Key=key, Tagging=RETENTION_TAGGING)

    assert admin.get_object_tagging(Bucket=stack.bucket, Key=key)["TagSet"] == RETENTION_TAGGING["TagSet"]
