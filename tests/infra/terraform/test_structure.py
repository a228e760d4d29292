"""Structural tests of terraform/: what the AWS deployment must look like, read from the HCL.

Each test names one property; the helpers in tfhcl.py return violations so the same checks can be
pointed at broken copies (test_checks_catch_breakage.py).
"""

from __future__ import annotations

import json
import re

import pytest

from tfhcl import (
    POLICY_TEMPLATES,
    REPO,
    RETENTION_PREFIX,
    RETENTION_TAG,
    SAMPLE_ARNS,
    attr,
    BACKLOG_QUEUES,
    backlog_policy_violations,
    blocks,
    granted,
    hcl_policy_violations,
    lifecycle_rules,
    media_put_object_violations,
    originals_retention_violations,
    policy_document,
    refers_to,
    render_template,
    retention_choices,
    retention_tag_violations,
    s3_encryption_violations,
    sns_encryption_violations,
    sqs_encryption_violations,
    template_policy_violations,
    template_variables,
)

CONTRACT_ENV = {
    "DATABASE_URL",
    "S3_BUCKET",
    "S3_KMS_KEY_ID",
    "SQS_QUEUE_URL",
    "SQS_DLQ_URL",
    "SQS_BULK_QUEUE_URL",
    "SQS_BULK_DLQ_URL",
    "SNS_TOPIC_ARN",
    "SNS_CHAT_TOPIC_ARN",
    "CHAT_EVENTS",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "LISTEN_ADDR",
    "METRICS_ADDR",
    "WORKER_CONCURRENCY",
    "SHUTDOWN_DEADLINE_SECS",
    "LOG_FORMAT",
    "APP_ENV",
    "PUBLIC_BASE_URL",
    "UPLOAD_URL_TTL_SECS",
    "RATE_LIMIT_PER_SECOND",
    "RATE_LIMIT_BURST",
    "TENANT_RATE_LIMIT_PER_SECOND",
    "TENANT_RATE_LIMIT_BURST",
    "ORIGINALS_RETENTION_DAYS",
    "ORIGINALS_RETENTION_CHOICES",
    "STALE_VARIANTS_GRACE_HOURS",
    "DELIVERY_BASE_URL",
    "DELIVERY_KEY_ID",
    "CORS_ALLOWED_ORIGINS",
    "TRUSTED_PROXY_HEADER",
    "HTTP_HEADER_READ_TIMEOUT_SECS",
    # OpenTelemetry's standard names, which the binary reads (docs/operations.md, "Traces").
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
}
SECRET_ENV = {"ADMIN_API_KEY", "PGPASSWORD", "DELIVERY_SIGNING_KEY", "DATABASE_APP_PASSWORD"}
ENVS = ["envs/staging", "envs/production"]


def env_names(expr) -> set[str]:
    """Environment variable names of an HCL object literal or a merge(...) expression string."""
    if isinstance(expr, dict):
        return set(expr)
    return set(re.findall(r"'([A-Z][A-Z0-9_]+)'\s*:", expr or ""))


# --- Encryption ---------------------------------------------------------------------------------


def test_every_sqs_queue_is_encrypted_with_kms(tree):
    assert tree.resources("aws_sqs_queue"), "no queues found"
    assert sqs_encryption_violations(tree) == []


def test_every_sns_topic_is_encrypted_with_kms(tree):
    assert tree.resources("aws_sns_topic"), "no topics found"
    assert sns_encryption_violations(tree) == []


def test_buckets_are_encrypted_with_the_service_key(tree):
    assert tree.resources("aws_s3_bucket"), "no buckets found"
    assert s3_encryption_violations(tree) == []


def test_kms_key_rotates_and_its_policy_names_the_key(tree):
    (key,) = tree.resources("aws_kms_key")
    assert attr(key.body, "enable_key_rotation") is True
    (policy,) = tree.resources("aws_kms_key_policy")
    assert refers_to(attr(policy.body, "policy"), "data.aws_iam_policy_document.key")
    (doc,) = [d for d in tree.data("aws_iam_policy_document") if d.name == "key"]
    principals = {
        ident
        for st in blocks(doc.body, "statement")
        for p in blocks(st, "principals")
        for ident in attr(p, "identifiers")
    }
    # S3 (events into the encrypted queue), SNS, CloudWatch alarms and CloudWatch Logs use the key.
    assert {"s3.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com"} <= principals
    assert any(p.startswith("logs.") for p in principals)


def test_every_bucket_blocks_public_access_and_enforces_bucket_owner(tree):
    for bucket in tree.resources("aws_s3_bucket"):
        module, ref = tree.rel(bucket.file), f"aws_s3_bucket.{bucket.name}"
        (pab,) = [p for p in tree.resources("aws_s3_bucket_public_access_block", module) if refers_to(attr(p.body, "bucket"), ref)]
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert attr(pab.body, setting) is True, f"{bucket}: {setting}"
        (own,) = [o for o in tree.resources("aws_s3_bucket_ownership_controls", module) if refers_to(attr(o.body, "bucket"), ref)]
        assert attr(blocks(own.body, "rule")[0], "object_ownership") == "BucketOwnerEnforced"
        (ver,) = [v for v in tree.resources("aws_s3_bucket_versioning", module) if refers_to(attr(v.body, "bucket"), ref)]
        assert attr(blocks(ver.body, "versioning_configuration")[0], "status") == "Enabled"


def test_every_bucket_policy_denies_insecure_transport(tree):
    for policy in tree.resources("aws_s3_bucket_policy"):
        doc_name = re.search(r"data\.aws_iam_policy_document\.(\w+)\.json", attr(policy.body, "policy")).group(1)
        (doc,) = [d for d in tree.data("aws_iam_policy_document", tree.rel(policy.file)) if d.name == doc_name]
        conditions = [
            (attr(st, "effect"), attr(c, "variable"), attr(c, "values"))
            for st in blocks(doc.body, "statement")
            for c in blocks(st, "condition")
        ]
        assert ("Deny", "aws:SecureTransport", ["false"]) in conditions, policy
    assert len(tree.resources("aws_s3_bucket_policy")) == len(tree.resources("aws_s3_bucket"))


def test_media_bucket_lifecycle_aborts_uploads_expires_uploads_and_tiers_originals(tree):
    lifecycle = tree.resource("aws_s3_bucket_lifecycle_configuration", "media")
    rules = {attr(r, "id"): r for r in blocks(lifecycle.body, "rule")}
    assert any(blocks(r, "abort_incomplete_multipart_upload") for r in rules.values())
    by_prefix = {attr(blocks(r, "filter")[0], "prefix"): r for r in rules.values() if blocks(r, "filter")}
    assert blocks(by_prefix["uploads/"], "expiration"), "uploads/ must expire"
    transition = blocks(by_prefix["originals/"], "transition")[0]
    assert attr(transition, "storage_class") == "${var.originals_storage_class}"
    assert tree.variables("modules/storage")["originals_transition_days"]["default"] == [30]


# --- Originals retention (issue #20) ------------------------------------------------------------
# The worker tags originals/{image_id} with image-service-retention-days = "N" once its job has
# succeeded under a retention of N days; the bucket's lifecycle deletes it N days after upload.


def test_every_retention_choice_has_exactly_one_rule_expiring_tagged_originals(tree):
    choices = retention_choices(tree)
    assert choices, "no retention choices: the test would prove nothing"
    assert originals_retention_violations(tree) == []
    tagged = [r for r in lifecycle_rules(tree) if RETENTION_TAG in r.tags]
    assert sorted(int(r.tags[RETENTION_TAG]) for r in tagged) == sorted(choices)
    assert all(r.prefix == RETENTION_PREFIX and r.expiration_days == int(r.tags[RETENTION_TAG]) for r in tagged), tagged
    assert len({r.id for r in lifecycle_rules(tree)}) == len(lifecycle_rules(tree)), "lifecycle rule ids must be unique"


def test_retention_keeps_the_tiering_of_originals_and_the_version_cleanup(tree):
    # The versioned bucket: an expired original becomes a noncurrent version, which the
    # bucket-wide noncurrent rule removes; untagged originals still move to the cheaper class.
    rules = {r.id: r for r in lifecycle_rules(tree)}
    assert rules["originals-to-cheaper-storage"].transition_days == 30
    assert rules["originals-to-cheaper-storage"].expiration_days is None
    assert rules["expire-noncurrent-versions"].prefix is None and not rules["expire-noncurrent-versions"].tags
    (cleanup,) = [
        r for r in blocks(tree.resource("aws_s3_bucket_lifecycle_configuration", "media").body, "rule")
        if attr(r, "id") == "expire-noncurrent-versions"
    ]
    assert attr(blocks(cleanup, "noncurrent_version_expiration")[0], "noncurrent_days") == "${var.noncurrent_version_expiration_days}"
    # A choice at or below the transition age is legal but pays the class's minimum duration:
    # the variable says so where operators choose the values.
    description = attr(tree.variables("modules/storage")["originals_retention_choices"], "description")
    assert "originals_transition_days" in description and "minimum storage duration" in description


def test_retention_tag_is_the_one_the_worker_may_set(tree):
    """One key everywhere: the lifecycle filter, the worker's s3:PutObjectTagging grant (on
    originals/* only, and only for that key) and the binary's contract."""
    assert RETENTION_TAG == "image-service-retention-days"
    assert retention_tag_violations(tree) == []
    for role in ("api", "replay", "execution"):
        actions = {a for a, _ in granted(render_template(POLICY_TEMPLATES / f"{role}.json.tpl"))}
        assert not {a for a in actions if "Tagging" in a}, f"{role} may tag objects"
    worker = granted(render_template(POLICY_TEMPLATES / "worker.json.tpl"))
    assert {r for a, r in worker if "Tagging" in a} == {f"{B}/originals/*"}
    assert {a for a, _ in worker if "Tagging" in a} == {"s3:PutObjectTagging"}


def test_rust_sources_name_the_same_retention_tag():
    # The binary's side of the contract, wherever it spells the tag out. Passes trivially until
    # the Rust code names it; fails as soon as it names a different key.
    found = {
        literal
        for crate in ("api", "pipeline", "worker", "cli", "entities")
        for source in (REPO / crate).rglob("*.rs")
        for literal in re.findall(r'"(image-service-retention[^"]*)"', source.read_text(errors="replace"))
    }
    assert found <= {RETENTION_TAG}, found


def test_tasks_carry_the_retention_settings_from_the_variables(tree):
    local = tree.locals("modules/compute/ecs")
    common = local["common_environment"]
    assert common["ORIGINALS_RETENTION_DAYS"] == "${tostring(var.originals_retention_days)}"
    assert common["STALE_VARIANTS_GRACE_HOURS"] == "${tostring(var.stale_variants_grace_hours)}"
    # The choices, comma-joined (the list's numbers, each as its decimal string).
    joined = re.sub(r"\s", "", common["ORIGINALS_RETENTION_CHOICES"])
    assert joined in (
        '${join(",",var.originals_retention_choices)}',
        '${join(",",[fordinvar.originals_retention_choices:tostring(d)])}',
    ), common["ORIGINALS_RETENTION_CHOICES"]
    # Every role reads them: api and worker merge the common environment without overriding
    # them, the one-off tasks get it as is.
    for role in ("api", "worker"):
        assert re.match(r"\$\{merge\(local\.common_environment,", local[f"{role}_environment"]), role
        assert not {"ORIGINALS_RETENTION_DAYS", "ORIGINALS_RETENTION_CHOICES", "STALE_VARIANTS_GRACE_HOURS"} & env_names(local[f"{role}_environment"])
    assert_ops_tasks_take_the_common_environment(tree)


def assert_ops_tasks_take_the_common_environment(tree) -> None:
    """replay gets the common environment as is; migrate the same with the owner's
    DATABASE_URL and the application role's name on top (tests/infra/parity runs both)."""
    local = tree.locals("modules/compute/ecs")
    assert "each.value.environment" in attr(tree.resource("aws_ecs_task_definition", "ops").body, "container_definitions")
    assert local["ops_containers"]["replay"]["environment"] == "${local.common_environment}"
    assert local["ops_containers"]["migrate"]["environment"] == "${local.migrate_environment}"
    assert re.match(r"\$\{merge\(local\.common_environment,", local["migrate_environment"])
    assert env_names(local["migrate_environment"]) == {"DATABASE_URL", "DATABASE_APP_ROLE"}


def test_the_default_retention_must_be_a_choice(tree):
    """Both services refuse an ORIGINALS_RETENTION_DAYS outside the choices: the plan fails first."""
    local = tree.locals("modules/compute/ecs")
    assert re.sub(r"\s", "", local["originals_retention_valid"]) == (
        "${var.originals_retention_days==0||contains(var.originals_retention_choices,var.originals_retention_days)}"
    )
    for name in ("api", "worker"):
        task = tree.resource("aws_ecs_task_definition", name)
        conditions = [attr(p, "condition") for lc in blocks(task.body, "lifecycle") for p in blocks(lc, "precondition")]
        assert "${local.originals_retention_valid}" in conditions, name
    variables = tree.variables("modules/compute/ecs")
    for name in ("originals_retention_days", "originals_retention_choices", "stale_variants_grace_hours"):
        assert variables[name].get("validation"), name
    storage = tree.variables("modules/storage")["originals_retention_choices"]
    conditions = [re.sub(r"\s", "", attr(v, "condition")) for v in storage["validation"]]
    assert "${alltrue([fordinvar.originals_retention_choices:d>=1&&floor(d)==d])}" in conditions
    assert any("distinct(var.originals_retention_choices)" in c for c in conditions), "duplicate choices collide on rule ids"


RETENTION_SETTINGS = {
    # variable: (default, modules/stack passes it to)
    "originals_retention_days": (0, ("compute",)),
    "originals_retention_choices": ([30, 90, 365], ("compute", "storage")),
    "stale_variants_grace_hours": (24, ("compute",)),
}


@pytest.mark.parametrize("variable", sorted(RETENTION_SETTINGS))
def test_retention_settings_are_plumbed_from_the_env_roots(tree, variable):
    default, consumers = RETENTION_SETTINGS[variable]
    # Same default at every level: keep originals unless an operator opts in, in either env.
    modules = [*ENVS, "modules/stack", *({"compute": "modules/compute/ecs", "storage": "modules/storage"}[c] for c in consumers)]
    for module in modules:
        assert tree.variables(module)[variable]["default"] == [default], module
    for env in ENVS:
        assert attr(tree.module_calls(env)["stack"], variable) == f"${{var.{variable}}}", env
    calls = tree.module_calls("modules/stack")
    for consumer in ("compute", "storage"):
        passed = attr(calls[consumer], variable)
        assert passed == (f"${{var.{variable}}}" if consumer in consumers else None), (consumer, passed)


def test_media_bucket_aborts_incomplete_multipart_uploads_bucket_wide(tree):
    # What checkov's CKV_AWS_300 checks, which it cannot see next to the dynamic retention rules.
    rules = [r for r in lifecycle_rules(tree) if r.id == "abort-incomplete-multipart-uploads"]
    assert [(r.status, r.prefix, r.tags, r.narrowed_by) for r in rules] == [("Enabled", None, {}, [])]
    (config,) = [
        r for r in blocks(tree.resource("aws_s3_bucket_lifecycle_configuration", "media").body, "rule")
        if attr(r, "id") == "abort-incomplete-multipart-uploads"
    ]
    assert attr(blocks(config, "abort_incomplete_multipart_upload")[0], "days_after_initiation") == "${var.abort_multipart_days}"
    assert tree.variables("modules/storage")["abort_multipart_days"]["default"] == [1]


def test_every_inline_checkov_skip_names_its_reason():
    for tf in (REPO / "terraform").rglob("*.tf"):
        for line in tf.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_AWS_\d+:\S.{10,}", line), f"{tf}: {line.strip()}"


def test_uploads_prefix_notifies_the_job_queue(tree):
    (note,) = tree.resources("aws_s3_bucket_notification")
    (queue,) = blocks(note.body, "queue")
    assert refers_to(attr(queue, "queue_arn"), 'aws_sqs_queue.queue["live"].arn')
    assert attr(queue, "filter_prefix") == "uploads/"
    assert attr(queue, "events") == ["s3:ObjectCreated:*"]
    # S3 validates the destination when the notification is saved: the queue policy must exist first.
    assert any(refers_to(d, "aws_sqs_queue_policy.queue") for d in attr(note.body, "depends_on"))


def test_media_bucket_policy_admits_presigned_puts_and_denies_other_encryption(tree):
    # A presigned browser PUT carries no x-amz-server-side-encryption header; the bucket default
    # (SSE-KMS with the service key) applies. Any header that is sent must be aws:kms + our key.
    assert media_put_object_violations(tree) == []


def test_media_bucket_default_encryption_is_the_service_key_with_bucket_key(tree):
    sse = tree.resource("aws_s3_bucket_server_side_encryption_configuration", "media")
    (rule,) = blocks(sse.body, "rule")
    default = blocks(rule, "apply_server_side_encryption_by_default")[0]
    assert attr(default, "sse_algorithm") == "aws:kms"
    assert attr(default, "kms_master_key_id") == "${aws_kms_key.this.arn}"
    assert attr(rule, "bucket_key_enabled") is True


def test_upload_cors_rule_exists_only_when_origins_are_set(tree):
    cors = tree.resource("aws_s3_bucket_cors_configuration", "media")
    assert re.sub(r"\s", "", attr(cors.body, "count")) == "${length(var.upload_cors_allowed_origins)>0?1:0}"
    (rule,) = blocks(cors.body, "cors_rule")
    assert attr(rule, "allowed_methods") == ["PUT"]
    assert attr(rule, "allowed_origins") == "${var.upload_cors_allowed_origins}"
    # What the presigned PUT is signed with: Content-Type and Content-Length, and the SSE-KMS
    # headers when the api signs them too. No wildcard.
    assert set(attr(rule, "allowed_headers")) == {
        "content-type",
        "content-length",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
    }
    variable = tree.variables("modules/storage")["upload_cors_allowed_origins"]
    assert variable["default"] == [[]]
    assert "cors_allowed_origins" not in tree.variables("modules/storage")


def test_upload_cors_origins_must_be_scheme_and_host():
    text = (REPO / "terraform/modules/storage/variables.tf").read_text()
    pattern = re.search(r'can\(regex\("([^"]+)", o\)\)', text).group(1).replace("\\\\", "\\")
    for good in ("https://app.example.com", "http://localhost:5173", "https://*.example.com"):
        assert re.search(pattern, good), good
    for bad in ("*", "https://app.example.com/", "app.example.com", "https://app.example.com/upload"):
        assert not re.search(pattern, bad), bad


@pytest.mark.parametrize("env", ENVS)
def test_upload_cors_origins_are_plumbed_from_the_env_roots(tree, env):
    stack = tree.module_calls(env)["stack"]
    assert attr(stack, "upload_cors_allowed_origins") == "${var.upload_cors_allowed_origins}"
    assert tree.variables(env)["upload_cors_allowed_origins"]["default"] == [[]]
    assert "cors_allowed_origins" not in tree.variables(env) and "cors_allowed_origins" not in stack
    storage = tree.module_calls("modules/stack")["storage"]
    assert attr(storage, "upload_cors_allowed_origins") == "${var.upload_cors_allowed_origins}"
    assert tree.variables("modules/stack")["upload_cors_allowed_origins"]["default"] == [[]]


# --- IAM ------------------------------------------------------------------------------------------


def test_no_iam_statement_in_hcl_has_a_wildcard_resource_or_inline_json(tree):
    assert tree.data("aws_iam_policy_document"), "no policy documents found"
    assert hcl_policy_violations(tree) == []


def test_policy_templates_have_no_wildcard_resource():
    assert sorted(p.name for p in POLICY_TEMPLATES.glob("*.json.tpl")) == [
        "api.json.tpl",
        "execution.json.tpl",
        "replay.json.tpl",
        "worker.json.tpl",
    ]
    assert template_policy_violations() == []


def test_kms_grants_hold_only_through_s3_sqs_sns_and_secrets_manager():
    """A stolen task credential cannot decrypt with the service key directly: every KMS grant
    of every role holds only when S3, SQS or SNS (the execution role: Secrets Manager) calls KMS
    on its behalf. moto does not evaluate kms:ViaService, so this is checked here."""
    region = SAMPLE_ARNS["region"]
    allowed = {
        "api": {f"{svc}.{region}.amazonaws.com" for svc in ("s3", "sqs", "sns")},
        "worker": {f"{svc}.{region}.amazonaws.com" for svc in ("s3", "sqs", "sns")},
        "replay": {f"{svc}.{region}.amazonaws.com" for svc in ("s3", "sqs", "sns")},
        "execution": {f"secretsmanager.{region}.amazonaws.com"},
    }
    for role, services in allowed.items():
        doc = render_template(POLICY_TEMPLATES / f"{role}.json.tpl")
        kms = [st for st in doc["Statement"] if any(str(a).startswith("kms:") for a in st["Action"])]
        assert kms, role
        for statement in kms:
            via = statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
            assert via, f"{role}: {statement.get('Sid')} grants KMS without kms:ViaService"
            assert set(via if isinstance(via, list) else [via]) == services, (role, via)


def test_task_role_templates_use_only_the_simple_variables():
    for role in ("api", "worker", "replay"):
        assert template_variables(POLICY_TEMPLATES / f"{role}.json.tpl") <= {
            "bucket_arn",
            "queue_arn",
            "dlq_arn",
            "bulk_queue_arn",
            "bulk_dlq_arn",
            "topic_arn",
            "chat_topic_arn",
            "kms_key_arn",
            "ecs_tasks_arn",
            "region",
        }


def test_iam_module_passes_every_template_variable(tree):
    text = tree.text("modules/iam")
    for template in POLICY_TEMPLATES.glob("*.json.tpl"):
        call = re.search(rf'templatefile\("\$\{{path\.module\}}/policies/{re.escape(template.name)}",\s*(\w[\w.]*|\{{.*?\}})\)', text, re.S)
        assert call, f"{template.name} is not rendered by modules/iam"
        args = call.group(1)
        if not args.startswith("{"):  # a local map
            args = re.search(rf"{args.split('.')[-1]}\s*=\s*(\{{.*?\n  \}})", text, re.S).group(1)
        passed = set(re.findall(r"^\s*(\w+)\s*=", args, re.M))
        assert template_variables(template) <= passed, template.name


B, Q, D, T, C, K = (SAMPLE_ARNS[k] for k in ("bucket_arn", "queue_arn", "dlq_arn", "topic_arn", "chat_topic_arn", "kms_key_arn"))
# The bulk lane (issue #27) and its dead-letter queue: replays and reprocessing go there, and
# `replay dlq` moves both DLQs into it.
BQ, BD = SAMPLE_ARNS["bulk_queue_arn"], SAMPLE_ARNS["bulk_dlq_arn"]
# What a DLQ redrive needs on its source: receive, delete and the queue's ARN and depth for the
# copy, the move task's start and progress.
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
REDRIVE = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks")
KMS = {("kms:GenerateDataKey", K), ("kms:Decrypt", K)}
# Events go to the event topic and, for those in CHAT_EVENTS, to the chat topic (AWS Chatbot).
PUBLISH = {("sns:Publish", T), ("sns:Publish", C)}
CONTRACT_GRANTS = {
    "api": {
        ("s3:PutObject", f"{B}/originals/*"),
        ("s3:PutObject", f"{B}/uploads/*"),
        # A streamed upload over one part that fails or exceeds the limit is aborted.
        ("s3:AbortMultipartUpload", f"{B}/originals/*"),
        # Variants of either delivery mode: variants/ (public) and private/ (signed), for the
        # key-gated GET /v1/images/{id}/variants/{preset}.
        ("s3:GetObject", f"{B}/variants/*"),
        ("s3:GetObject", f"{B}/private/*"),
        ("s3:GetObject", f"{B}/originals/*"),
        # DELETE /v1/images/{id} and the sweep that finishes deletions cut short: every object
        # of an image, found by listing its prefixes (a condition limits the listing to them).
        ("s3:DeleteObject", f"{B}/originals/*"),
        ("s3:DeleteObject", f"{B}/variants/*"),
        ("s3:DeleteObject", f"{B}/private/*"),
        ("s3:DeleteObject", f"{B}/uploads/*"),
        ("s3:ListBucket", B),
        ("sqs:SendMessage", Q),
        ("sqs:GetQueueAttributes", Q),
        # The admin endpoints (POST /v1/admin/replay/dlq, /replay/jobs, /reprocess) run the same
        # replays as the replay task, inside the api task: they send to the bulk lane (its ARN is
        # the move task's destination), redrive both DLQs (move task, or copy with receive + send
        # to the bulk lane + delete), and publish one replay.summary event per run.
        ("sqs:SendMessage", BQ),
        ("sqs:GetQueueAttributes", BQ),
        *{(a, dlq) for a in REDRIVE for dlq in (D, BD)},
    }
    | PUBLISH
    | KMS,
    "worker": {
        ("s3:GetObject", f"{B}/originals/*"),
        ("s3:GetObject", f"{B}/uploads/*"),
        # A job stores its variants under the prefix of its tenant's delivery mode.
        ("s3:PutObject", f"{B}/variants/*"),
        ("s3:PutObject", f"{B}/private/*"),
        ("s3:PutObject", f"{B}/originals/*"),
        ("s3:DeleteObject", f"{B}/uploads/*"),
        # The variants a job stored for an image deleted while it ran, by key.
        ("s3:DeleteObject", f"{B}/variants/*"),
        ("s3:DeleteObject", f"{B}/private/*"),
        # Originals retention: once a job succeeded, the retention tag on its original (only that
        # key: a condition, which moto ignores; test_retention_tag_is_the_one_the_worker_may_set).
        ("s3:PutObjectTagging", f"{B}/originals/*"),
        # Both lanes, the same way: the live queue first, the bulk lane for a bounded share.
        *{
            (a, queue)
            for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
            for queue in (Q, BQ)
        },
        # The ECS agent calls UpdateTaskProtection with the task role's credentials.
        ("ecs:UpdateTaskProtection", SAMPLE_ARNS["ecs_tasks_arn"]),
    }
    | PUBLISH
    | KMS,
    "replay": {
        # Both DLQs, into the bulk lane; replays jobs and reprocessing send to it too. Nothing on
        # the live queue: no replay competes with uploads.
        *{(a, dlq) for a in (*REDRIVE, "sqs:CancelMessageMoveTask") for dlq in (D, BD)},
        ("sqs:SendMessage", BQ),
        ("sqs:GetQueueAttributes", BQ),
    }
    | PUBLISH
    | KMS,
}


@pytest.mark.parametrize("role", sorted(CONTRACT_GRANTS))
def test_task_role_grants_exactly_the_contract_actions_on_our_arns(role):
    assert granted(render_template(POLICY_TEMPLATES / f"{role}.json.tpl")) == CONTRACT_GRANTS[role]


def on(pairs: set[tuple[str, str]], resource: str) -> set[str]:
    return {a for a, r in pairs if r == resource}


@pytest.mark.parametrize("role", ["api", "worker", "replay"])
def test_each_role_works_the_bulk_pair_as_it_works_the_live_pair(role):
    """The bulk DLQ is redriven exactly like the live one; the worker consumes the bulk lane
    exactly like the live queue; the api enqueues on it what it enqueues on the live queue (its
    replays), and the replay task, which never enqueues live work, sends to the bulk lane only."""
    pairs = granted(render_template(POLICY_TEMPLATES / f"{role}.json.tpl"))
    assert on(pairs, BD) == on(pairs, D), role
    if role == "replay":
        assert on(pairs, Q) == set() and on(pairs, BQ) == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    else:
        assert on(pairs, BQ) == on(pairs, Q) and on(pairs, Q), role
    # A move task's destination must accept the caller's SendMessage: whoever redrives a DLQ
    # may send to the bulk lane.
    if on(pairs, D):
        assert {"sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= on(pairs, D)
        assert "sqs:SendMessage" in on(pairs, BQ), role


def test_iam_module_gets_the_bulk_pairs_arns(tree):
    variables = tree.locals("modules/iam")["task_policy_vars"]
    assert variables["bulk_queue_arn"] == "${var.bulk_queue_arn}" and variables["bulk_dlq_arn"] == "${var.bulk_dlq_arn}"
    call = tree.module_calls("modules/stack")["iam"]
    assert attr(call, "bulk_queue_arn") == "${module.queues.bulk_queue_arn}"
    assert attr(call, "bulk_dlq_arn") == "${module.queues.bulk_dlq_arn}"


def test_presigned_uploads_sign_with_the_api_role_and_the_worker_moves_them():
    """POST /v1/uploads presigns a PUT to uploads/{job_id} with the api role's credentials (the
    URL acts with the signer's permissions); S3 encrypts it with the service key on the caller's
    behalf (kms:GenerateDataKey). The worker copies uploads/{job_id} to originals/{image_id}
    (CopyObject is authorised as s3:GetObject on the source and s3:PutObject on the target;
    there is no s3:CopyObject action) and deletes the upload."""
    api = granted(render_template(POLICY_TEMPLATES / "api.json.tpl"))
    worker = granted(render_template(POLICY_TEMPLATES / "worker.json.tpl"))
    assert {("s3:PutObject", f"{B}/uploads/*"), ("kms:GenerateDataKey", K)} <= api
    # The api never reads what clients upload, and writes no variants; it removes either only
    # when an image is deleted.
    assert {a for a, r in api if r == f"{B}/uploads/*"} == {"s3:PutObject", "s3:DeleteObject"}
    for prefix in ("variants/", "private/"):
        assert {a for a, r in api if r.startswith(f"{B}/{prefix}")} == {"s3:GetObject", "s3:DeleteObject"}, prefix
    assert {
        ("s3:GetObject", f"{B}/uploads/*"),
        ("s3:DeleteObject", f"{B}/uploads/*"),
        ("s3:PutObject", f"{B}/originals/*"),
        ("kms:Decrypt", K),
        ("kms:GenerateDataKey", K),
    } <= worker
    # The worker cannot forge uploads (which would become jobs), delete originals, or list.
    assert ("s3:PutObject", f"{B}/uploads/*") not in worker
    assert ("s3:DeleteObject", f"{B}/originals/*") not in worker
    assert not {a for a, _ in worker if a == "s3:ListBucket"}
    assert not {a for a, _ in api | worker if a in ("s3:CopyObject", "s3:*", "kms:*")}


def test_bucket_listing_is_limited_to_an_images_prefixes():
    """moto ignores conditions, so scripts/check-iam cannot see this one: wherever a role may
    list the bucket, only under originals/, variants/, private/ and uploads/ (an image's objects)."""
    for template in POLICY_TEMPLATES.glob("*.json.tpl"):
        doc = render_template(template)
        for statement in doc["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "s3:ListBucket" not in actions:
                continue
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            assert prefixes, f"{template.name}: {statement.get('Sid')} lists the whole bucket"
            assert set(prefixes) <= {"originals/*", "variants/*", "private/*", "uploads/*"}, prefixes


def test_execution_role_reads_only_our_secrets_repository_and_log_groups():
    pairs = granted(render_template(POLICY_TEMPLATES / "execution.json.tpl"))
    secrets = {r for a, r in pairs if a == "secretsmanager:GetSecretValue"}
    assert secrets == {SAMPLE_ARNS[k] for k in ("db_secret_arn", "db_app_secret_arn", "admin_api_key_secret_arn", "delivery_signing_key_secret_arn")}
    assert {r for a, r in pairs if a == "ecr:BatchGetImage"} == {SAMPLE_ARNS["ecr_repository_arn"]}
    assert {r for a, r in pairs if r == "*"} == {"*"} and {a for a, r in pairs if r == "*"} == {"ecr:GetAuthorizationToken"}


def test_task_roles_trust_only_ecs_tasks_of_this_account(tree):
    (doc,) = [d for d in tree.data("aws_iam_policy_document", "modules/iam") if d.name == "ecs_tasks_assume"]
    (st,) = blocks(doc.body, "statement")
    assert attr(blocks(st, "principals")[0], "identifiers") == ["ecs-tasks.amazonaws.com"]
    assert {attr(c, "variable") for c in blocks(st, "condition")} == {"aws:SourceAccount", "aws:SourceArn"}


# --- Queues -------------------------------------------------------------------------------------


def test_job_queue_redrives_to_its_dlq_after_max_receive_count(tree):
    # Both lanes are one definition (for_each over local.lanes); test_queue_lanes.py evaluates it
    # per lane: each queue's redrive, its DLQ's allow policy and precondition, the queue policies.
    queue = tree.resource("aws_sqs_queue", "queue", "modules/queues")
    assert attr(queue.body, "for_each") == "${local.lanes}"
    assert attr(tree.resource("aws_sqs_queue", "dlq", "modules/queues").body, "for_each") == "${local.lanes}"
    redrive = attr(queue.body, "redrive_policy")
    assert refers_to(redrive, "aws_sqs_queue.dlq[each.key].arn") and "deadLetterTargetArn" in redrive
    assert re.search(r"maxReceiveCount'?\s*:\s*'?\$\{var\.max_receive_count\}", redrive), redrive
    allow = tree.resource("aws_sqs_queue_redrive_allow_policy", "dlq")
    assert refers_to(attr(allow.body, "redrive_allow_policy"), "aws_sqs_queue.queue[each.key].arn")


def test_dlq_retains_messages_longer_than_the_main_queue(tree):
    variables = tree.variables("modules/queues")
    assert variables["dlq_message_retention_seconds"]["default"][0] > variables["message_retention_seconds"]["default"][0]
    dlq = tree.resource("aws_sqs_queue", "dlq")
    conditions = [attr(p, "condition") for lc in blocks(dlq.body, "lifecycle") for p in blocks(lc, "precondition")]
    assert "${var.dlq_message_retention_seconds > var.message_retention_seconds}" in conditions


def test_visibility_timeout_is_well_above_the_worst_case_job_time(tree):
    jobs = tree.resource("aws_sqs_queue", "queue")
    assert attr(jobs.body, "visibility_timeout_seconds") == "${local.visibility_timeout_seconds}"
    expr = tree.locals("modules/queues")["visibility_timeout_seconds"]
    assert "var.worst_case_job_seconds * var.visibility_timeout_multiplier" in expr
    multiplier = tree.variables("modules/queues")["visibility_timeout_multiplier"]
    assert multiplier["default"][0] >= 2 and multiplier.get("validation")


# --- The bulk lane (issue #27) -------------------------------------------------------------------
# Replays and reprocessing get their own queue and DLQ; workers receive from both lanes. The
# per-lane properties (own DLQ, allow policy, retention guard, Deny of plain HTTP on all four,
# S3 events on the live queue only, moved.tf) are in test_queue_lanes.py.


def test_the_queue_definition_says_why_messages_carry_a_group(tree):
    """Fair queues need no attribute: the comment at the queues is the only place that says so."""
    text = tree.text("modules/queues")
    assert "MessageGroupId" in text and "sqs-fair-queues.html" in text


QUEUE_OUTPUTS = {
    # modules/queues output: the resource attribute it exports
    "bulk_queue_url": '${aws_sqs_queue.queue["bulk"].url}',
    "bulk_queue_arn": '${aws_sqs_queue.queue["bulk"].arn}',
    "bulk_queue_name": '${aws_sqs_queue.queue["bulk"].name}',
    "bulk_dlq_url": '${aws_sqs_queue.dlq["bulk"].url}',
    "bulk_dlq_arn": '${aws_sqs_queue.dlq["bulk"].arn}',
    "bulk_dlq_name": '${aws_sqs_queue.dlq["bulk"].name}',
}


def test_the_bulk_pair_is_exported_and_reaches_the_env_roots(tree):
    outputs = tree.outputs("modules/queues")
    for name, value in QUEUE_OUTPUTS.items():
        assert attr(outputs[name], "value") == value, name
    stack = tree.outputs("modules/stack")
    assert attr(stack["sqs_bulk_queue_url"], "value") == "${module.queues.bulk_queue_url}"
    assert attr(stack["sqs_bulk_dlq_url"], "value") == "${module.queues.bulk_dlq_url}"
    for env in ENVS:
        for name in ("sqs_bulk_queue_url", "sqs_bulk_dlq_url"):
            assert attr(tree.outputs(env)[name], "value") == f"${{module.stack.{name}}}", (env, name)


def test_every_task_gets_both_lanes_and_both_dlqs(tree):
    """api, worker, replay and migrate: every task that gets SQS_QUEUE_URL and SQS_DLQ_URL gets the
    bulk pair beside them, from the queues module's outputs."""
    local = tree.locals("modules/compute/ecs")
    common = local["common_environment"]
    for setting, key in (("SQS_QUEUE_URL", "sqs_queue_url"), ("SQS_DLQ_URL", "sqs_dlq_url"),
                         ("SQS_BULK_QUEUE_URL", "sqs_bulk_queue_url"), ("SQS_BULK_DLQ_URL", "sqs_bulk_dlq_url")):
        assert common[setting] == f"${{var.config.{key}}}", setting
    config = tree.module_calls("modules/stack")["compute"]["config"][0]
    assert config["sqs_bulk_queue_url"] == "${module.queues.bulk_queue_url}"
    assert config["sqs_bulk_dlq_url"] == "${module.queues.bulk_dlq_url}"
    # The services merge the common environment without overriding the queues; the one-off
    # tasks take it as it is (or, migrate, with only the database settings on top).
    for role in ("api", "worker"):
        assert re.match(r"\$\{merge\(local\.common_environment,", local[f"{role}_environment"]), role
        assert not {"SQS_QUEUE_URL", "SQS_DLQ_URL", "SQS_BULK_QUEUE_URL", "SQS_BULK_DLQ_URL"} & env_names(local[f"{role}_environment"])
        assert f"local.{role}_environment" in local[f"{role}_container"]["environment"], role
    assert_ops_tasks_take_the_common_environment(tree)


def test_queue_policy_lets_only_our_bucket_in_our_account_send(tree):
    (doc,) = [d for d in tree.data("aws_iam_policy_document", "modules/queues") if d.name == "s3_events"]
    (allow,) = [s for s in blocks(doc.body, "statement") if attr(s, "effect", "Allow") == "Allow"]
    assert attr(allow, "actions") == ["sqs:SendMessage"]
    assert attr(blocks(allow, "principals")[0], "identifiers") == ["s3.amazonaws.com"]
    conditions = {attr(c, "variable"): attr(c, "values") for c in blocks(allow, "condition")}
    assert conditions["aws:SourceArn"] == ["${var.bucket_arn}"]
    assert "aws:SourceAccount" in conditions


# --- Notifications ------------------------------------------------------------------------------


def test_slack_is_optional_and_hears_only_the_chat_and_ops_topics(tree):
    chatbot = tree.resource("aws_chatbot_slack_channel_configuration", "this")
    assert attr(chatbot.body, "count") == "${local.slack_enabled ? 1 : 0}"
    assert 'var.slack_team_id != ""' in tree.locals("modules/notifications")["slack_enabled"]
    # Chatbot renders only its custom-notification schema (the chat topic) and CloudWatch alarms
    # (the ops topic); the event topic carries the raw JSON event, which it cannot render.
    assert attr(chatbot.body, "sns_topic_arns") == ["${aws_sns_topic.chat.arn}", "${aws_sns_topic.ops.arn}"]
    subscriptions = tree.resources("aws_sns_topic_subscription", "modules/notifications")
    assert not [s for s in subscriptions if attr(s.body, "protocol") in ("https", "http")], "Chatbot subscribes itself"
    assert "slack_filter_policy" not in tree.variables("modules/notifications")


def test_chat_topic_is_encrypted_with_the_same_topic_policy_and_exported(tree):
    chat = tree.resource("aws_sns_topic", "chat")
    assert attr(chat.body, "kms_master_key_id") == attr(tree.resource("aws_sns_topic", "events").body, "kms_master_key_id")
    assert tree.locals("modules/notifications")["topics"]["chat"] == "${aws_sns_topic.chat.arn}"
    assert attr(tree.outputs("modules/notifications")["chat_topic_arn"], "value") == "${aws_sns_topic.chat.arn}"
    assert tree.variables("modules/notifications")["chat_events"]["default"] == [["image.failed", "replay.summary"]]


def test_services_get_the_chat_topic_and_chat_events(tree):
    common = tree.locals("modules/compute/ecs")["common_environment"]
    assert common["SNS_CHAT_TOPIC_ARN"] == "${var.config.sns_chat_topic_arn}"
    assert re.sub(r"\s", "", common["CHAT_EVENTS"]) == '${join(",",var.chat_events)}'
    config = tree.module_calls("modules/stack")["compute"]["config"][0]
    assert config["sns_chat_topic_arn"] == "${module.notifications.chat_topic_arn}"
    assert tree.module_calls("modules/stack")["iam"]["chat_topic_arn"] == ["${module.notifications.chat_topic_arn}"]


def test_email_subscriptions_come_from_variables_with_filter_policies(tree):
    sub = tree.resource("aws_sns_topic_subscription", "event_email")
    assert attr(sub.body, "for_each") == "${toset(var.event_email_addresses)}"
    assert attr(sub.body, "filter_policy") == "${jsonencode(var.event_email_filter_policy)}"


# --- Autoscaling --------------------------------------------------------------------------------


def test_worker_scales_on_backlog_per_task(tree):
    assert backlog_policy_violations(tree) == []


def test_worker_backlog_counts_both_lanes(tree):
    """Replays and reprocessing wait on the bulk lane, drained by the same workers: its backlog
    adds tasks like the live queue's. modules/stack passes each lane's queue name."""
    assert BACKLOG_QUEUES == ("${var.queue_name}", "${var.bulk_queue_name}")
    assert backlog_policy_violations(tree, ("${var.queue_name}",)) != [], "the check must see the bulk lane"
    call = tree.module_calls("modules/stack")["autoscaling"]
    assert attr(call, "queue_name") == "${module.queues.queue_name}"
    assert attr(call, "bulk_queue_name") == "${module.queues.bulk_queue_name}"


def test_backlog_target_is_derived_from_latency_and_job_time(tree):
    expr = tree.locals("modules/autoscaling")["backlog_per_task_target"]
    for var in ("acceptable_latency_seconds", "worker_concurrency", "seconds_per_job"):
        assert f"var.{var}" in expr
    # The comment above it shows the arithmetic with the defaults.
    assert re.search(r"#\s+backlog per task target\s+=.*=\s*120 messages", tree.text("modules/autoscaling"))
    policy = tree.resource("aws_appautoscaling_policy", "worker_backlog_per_task")
    cfg = blocks(policy.body, "target_tracking_scaling_policy_configuration")[0]
    assert attr(cfg, "target_value") == "${local.backlog_per_task_target}"


def test_worker_wakes_from_zero_through_a_step_policy_on_queue_depth(tree):
    step = tree.resource("aws_appautoscaling_policy", "worker_wake_up")
    assert attr(step.body, "policy_type") == "StepScaling"
    alarm = tree.resource("aws_cloudwatch_metric_alarm", "worker_wake_up")
    assert any(refers_to(a, "aws_appautoscaling_policy.worker_wake_up.arn") for a in attr(alarm.body, "alarm_actions"))
    metrics = [attr(m, "metric_name") for q in blocks(alarm.body, "metric_query") for m in blocks(q, "metric")]
    assert "ApproximateNumberOfMessagesVisible" in metrics
    assert attr(alarm.body, "comparison_operator") == "GreaterThanThreshold" and attr(alarm.body, "threshold") == 0
    expression = [attr(q, "expression") for q in blocks(alarm.body, "metric_query") if attr(q, "return_data") is True]
    assert expression and "visible > 0" in expression[0]
    # `visible` is both lanes' backlog: a replay waiting while no worker runs wakes one too.
    queries = {attr(q, "id"): q for q in blocks(alarm.body, "metric_query")}
    assert re.sub(r"\s", "", attr(queries["visible"], "expression")) == "FILL(live,0)+FILL(bulk,0)"
    queues = {
        qid: attr(m, "dimensions")["QueueName"]
        for qid, q in queries.items()
        for m in blocks(q, "metric")
        if attr(m, "metric_name") == "ApproximateNumberOfMessagesVisible"
    }
    assert queues == {"live": "${var.queue_name}", "bulk": "${var.bulk_queue_name}"}
    worker_target = tree.resource("aws_appautoscaling_target", "worker")
    assert attr(worker_target.body, "min_capacity") == "${var.worker_min_tasks}"
    assert attr(worker_target.body, "max_capacity") == "${var.worker_max_tasks}"


def test_services_leave_desired_count_to_autoscaling(tree):
    services = tree.resources("aws_ecs_service")
    assert {s.name for s in services} == {"api", "worker"}
    for service in services:
        ignored = [i for lc in blocks(service.body, "lifecycle") for i in attr(lc, "ignore_changes")]
        assert "${desired_count}" in ignored or "desired_count" in ignored, service


# --- Compute --------------------------------------------------------------------------------------


def test_tasks_run_in_private_subnets_without_public_ip(tree):
    for service in tree.resources("aws_ecs_service"):
        (net,) = blocks(service.body, "network_configuration")
        assert attr(net, "assign_public_ip") is False, service
        assert attr(net, "subnets") == "${var.private_subnet_ids}", service


def test_containers_have_read_only_root_filesystem(tree):
    local = tree.locals("modules/compute/ecs")
    assert local["api_container"]["readonlyRootFilesystem"] is True
    assert local["worker_container"]["readonlyRootFilesystem"] is True
    ops = tree.resource("aws_ecs_task_definition", "ops")
    assert "'readonlyRootFilesystem': True" in attr(ops.body, "container_definitions")


def test_worker_stop_timeout_covers_the_shutdown_deadline(tree):
    local = tree.locals("modules/compute/ecs")
    assert local["worker_container"]["stopTimeout"] == "${local.worker_stop_timeout}"
    assert local["worker_stop_timeout"] == "${var.shutdown_deadline_secs + var.stop_timeout_margin_secs}"
    variables = tree.variables("modules/compute/ecs")
    total = variables["shutdown_deadline_secs"]["default"][0] + variables["stop_timeout_margin_secs"]["default"][0]
    assert 35 <= total <= 120
    env = env_names(local["worker_environment"])
    assert "SHUTDOWN_DEADLINE_SECS" in env


def test_api_and_worker_get_redis_and_public_base_url(tree):
    local = tree.locals("modules/compute/ecs")
    common = local["common_environment"]
    # The api reads through the cache; the worker invalidates entries when a job changes state.
    assert common["REDIS_URL"] == "${var.config.redis_url}"
    for role in ("api", "worker"):
        assert re.match(r"\$\{merge\(local\.common_environment,", local[f"{role}_environment"]), role
        assert re.search(r"'PUBLIC_BASE_URL':\s*'\$\{local\.public_base_url\}'", local[f"{role}_environment"]), role
        assert f"local.{role}_environment" in local[f"{role}_container"]["environment"], role
    # The one-off tasks (common environment only) must not depend on the ALB: step 6 of
    # docs/deploy.md applies the migrate task definition alone, before the rest.
    assert "PUBLIC_BASE_URL" not in common and "aws_lb" not in json.dumps(common)
    assert_ops_tasks_take_the_common_environment(tree)
    assert tree.module_calls("modules/stack")["compute"]["config"][0]["redis_url"] == "${module.data.redis_url}"


def test_public_base_url_defaults_to_the_alb_and_is_plumbed_from_the_env_roots(tree):
    expr = re.sub(r"\s", "", tree.locals("modules/compute/ecs")["public_base_url"])
    assert expr == '${var.public_base_url!=""?trimsuffix(var.public_base_url,"/"):"https://${aws_lb.api.dns_name}"}'
    for module in ("modules/compute/ecs", "modules/stack", *ENVS):
        assert tree.variables(module)["public_base_url"]["default"] == [""], module
    assert tree.variables("modules/compute/ecs")["public_base_url"].get("validation"), "https only"
    assert attr(tree.module_calls("modules/stack")["compute"], "public_base_url") == "${var.public_base_url}"
    for env in ENVS:
        assert attr(tree.module_calls(env)["stack"], "public_base_url") == "${var.public_base_url}"
        assert attr(tree.outputs(env)["public_base_url"], "value") == "${module.stack.public_base_url}"


API_ONLY_SETTINGS = {
    # environment variable: (variable, default)
    "UPLOAD_URL_TTL_SECS": ("upload_url_ttl_secs", 900),
    "RATE_LIMIT_PER_SECOND": ("rate_limit_per_second", 20),
    "RATE_LIMIT_BURST": ("rate_limit_burst", 40),
    "TENANT_RATE_LIMIT_PER_SECOND": ("tenant_rate_limit_per_second", 100),
    "TENANT_RATE_LIMIT_BURST": ("tenant_rate_limit_burst", 200),
}


@pytest.mark.parametrize("name", sorted(API_ONLY_SETTINGS))
def test_api_task_gets_upload_ttl_and_rate_limits(tree, name):
    variable, default = API_ONLY_SETTINGS[name]
    local = tree.locals("modules/compute/ecs")
    assert re.search(rf"'{name}':\s*'\$\{{tostring\(var\.{variable}\)\}}'", local["api_environment"]), local["api_environment"]
    assert name not in env_names(local["worker_environment"]) and name not in local["common_environment"]
    for module in ("modules/compute/ecs", "modules/stack"):
        assert tree.variables(module)[variable]["default"] == [default], module
    assert tree.variables("modules/compute/ecs")[variable].get("validation"), variable
    assert attr(tree.module_calls("modules/stack")["compute"], variable) == f"${{var.{variable}}}"


def test_api_and_worker_reach_redis_and_nothing_else_does(tree):
    groups = tree.locals("modules/network")["task_groups"]
    assert {"api", "worker"} <= set(groups)
    egress = tree.resource("aws_vpc_security_group_egress_rule", "tasks_redis")
    ingress = tree.resource("aws_vpc_security_group_ingress_rule", "cache_from_tasks")
    for rule, peer in ((egress, "referenced_security_group_id"), (ingress, "referenced_security_group_id")):
        assert attr(rule.body, "for_each") == "${local.task_groups}", rule
        assert attr(rule.body, "from_port") == attr(rule.body, "to_port") == "${local.redis_port}"
    assert attr(egress.body, "referenced_security_group_id") == "${aws_security_group.cache.id}"
    assert attr(ingress.body, "security_group_id") == "${aws_security_group.cache.id}"
    assert attr(ingress.body, "referenced_security_group_id") == "${each.value}"
    cache_ingress = [
        r for r in tree.resources("aws_vpc_security_group_ingress_rule", "modules/network")
        if attr(r.body, "security_group_id") == "${aws_security_group.cache.id}"
    ]
    assert cache_ingress == [ingress], "only the task groups may reach the cache"
    assert tree.locals("modules/network")["redis_port"] == 6379
    cache = tree.resource("aws_elasticache_replication_group", "this")
    assert attr(cache.body, "security_group_ids") == ["${var.cache_security_group_id}"]
    assert attr(tree.module_calls("modules/stack")["data"], "cache_security_group_id") == "${module.network.security_group_ids.cache}"


def test_container_environment_uses_contract_names_and_no_secrets(tree):
    local = tree.locals("modules/compute/ecs")
    names = env_names(local["common_environment"]) | env_names(local["api_environment"]) | env_names(local["worker_environment"])
    # The services merge the trace settings in from their own local (test_traces.py).
    names |= env_names(local["trace_environment"])
    assert names <= CONTRACT_ENV, names - CONTRACT_ENV
    assert not names & SECRET_ENV
    assert {
        "DATABASE_URL",
        "S3_BUCKET",
        "S3_KMS_KEY_ID",
        "SQS_QUEUE_URL",
        "SQS_DLQ_URL",
        "SQS_BULK_QUEUE_URL",
        "SQS_BULK_DLQ_URL",
        "SNS_TOPIC_ARN",
    } <= names


def test_secrets_reach_tasks_through_ecs_secrets(tree):
    local = tree.locals("modules/compute/ecs")
    # The services and replay connect as the application role; only migrate holds the owner's
    # password, and the application role's to set it.
    assert local["database_secret"] == [{"name": "PGPASSWORD", "valueFrom": "${var.db_app_secret_arn}:password::"}]
    assert local["owner_secrets"] == [
        {"name": "PGPASSWORD", "valueFrom": "${var.db_secret_arn}:password::"},
        {"name": "DATABASE_APP_PASSWORD", "valueFrom": "${var.db_app_secret_arn}:password::"},
    ]
    assert local["ops_containers"]["migrate"]["secrets"] == "${local.owner_secrets}"
    assert local["ops_containers"]["replay"]["secrets"] == "${local.database_secret}"
    assert local["admin_secret"] == [{"name": "ADMIN_API_KEY", "valueFrom": "${var.admin_api_key_secret_arn}"}]
    assert "local.admin_secret" in local["api_container"]["secrets"]
    # The delivery signing key reaches both services the same way (test_delivery.py).
    assert "local.delivery_secret" in local["api_container"]["secrets"] and "local.delivery_secret" in local["worker_container"]["secrets"]
    for output in ("database_url", "owner_database_url"):
        database_url = attr(tree.outputs("modules/data")[output], "value")
        assert "password" not in database_url.lower() and not re.search(r"://[^@/]*:[^@/]*@", database_url)
        # The server's certificate and name are checked, against the CA bundle in the image.
        assert database_url.endswith("?${local.db_tls}"), database_url
    assert tree.locals("modules/data")["db_tls"] == "sslmode=verify-full&sslrootcert=${var.db_ca_bundle_path}"


def test_migrate_task_runs_migrate(tree):
    ops = tree.locals("modules/compute/ecs")["ops_containers"]
    assert ops["migrate"]["command"] == ["migrate"]
    assert ops["replay"]["role"] == "${var.task_role_arns.replay}"


def test_alb_redirects_http_and_terminates_tls(tree):
    alb = tree.resource("aws_lb", "api")
    assert attr(alb.body, "drop_invalid_header_fields") is True
    assert attr(alb.body, "enable_deletion_protection") == "${var.alb_deletion_protection}"
    https = tree.resource("aws_lb_listener", "https")
    assert attr(https.body, "protocol") == "HTTPS" and attr(https.body, "certificate_arn") == "${var.certificate_arn}"
    assert attr(https.body, "ssl_policy").startswith("ELBSecurityPolicy-TLS13")
    http = tree.resource("aws_lb_listener", "http_redirect")
    action = blocks(http.body, "default_action")[0]
    assert attr(action, "type") == "redirect"
    assert attr(blocks(action, "redirect")[0], "protocol") == "HTTPS"
    health = blocks(tree.resource("aws_lb_target_group", "api").body, "health_check")[0]
    assert attr(health, "path") == "/readyz"


def test_alb_keeps_the_unauthenticated_metrics_off_the_internet(tree):
    rule = tree.resource("aws_lb_listener_rule", "hide_metrics")
    assert attr(rule.body, "listener_arn") == "${aws_lb_listener.https.arn}"
    paths = attr(blocks(blocks(rule.body, "condition")[0], "path_pattern")[0], "values")
    assert "/metrics" in paths
    action = blocks(rule.body, "action")[0]
    assert attr(action, "type") == "fixed-response"
    assert attr(blocks(action, "fixed_response")[0], "status_code") == "404"


def test_ecr_repository_is_immutable_scanned_and_kms_encrypted(tree):
    repo = tree.resource("aws_ecr_repository", "this")
    assert attr(repo.body, "image_tag_mutability") == "IMMUTABLE"
    assert attr(blocks(repo.body, "image_scanning_configuration")[0], "scan_on_push") is True
    assert attr(blocks(repo.body, "encryption_configuration")[0], "encryption_type") == "KMS"


def test_ecs_cluster_has_container_insights(tree):
    cluster = tree.resource("aws_ecs_cluster", "this")
    settings = {attr(s, "name"): attr(s, "value") for s in blocks(cluster.body, "setting")}
    assert settings["containerInsights"] == "${var.container_insights}"
    assert tree.variables("modules/compute/ecs")["container_insights"]["default"] == ["enabled"]


# --- Data -----------------------------------------------------------------------------------------


def test_rds_is_encrypted_private_and_manages_its_password(tree):
    db = tree.resource("aws_db_instance", "this")
    assert attr(db.body, "storage_encrypted") is True
    assert attr(db.body, "publicly_accessible") is False
    assert attr(db.body, "manage_master_user_password") is True
    assert "password" not in db.body
    params = {attr(p, "name"): attr(p, "value") for p in blocks(tree.resource("aws_db_parameter_group", "this").body, "parameter")}
    assert params["rds.force_ssl"] == "1"


def test_elasticache_encrypts_at_rest_and_in_transit(tree):
    cache = tree.resource("aws_elasticache_replication_group", "this")
    assert attr(cache.body, "at_rest_encryption_enabled") is True
    assert attr(cache.body, "transit_encryption_enabled") is True
    assert attr(tree.outputs("modules/data")["redis_url"], "value").startswith("rediss://")


# --- Observability ------------------------------------------------------------------------------


def test_log_groups_have_retention_and_kms(tree):
    groups = tree.resources("aws_cloudwatch_log_group")
    assert len(groups) >= 2
    for group in groups:
        assert attr(group.body, "retention_in_days"), group
        assert attr(group.body, "kms_key_id"), group


def test_alarms_cover_the_pipeline_and_notify_the_ops_topic(tree):
    alarms = {a.name: a for a in tree.resources("aws_cloudwatch_metric_alarm", "modules/observability")}
    metric = {n: attr(a.body, "metric_name") for n, a in alarms.items()}
    assert metric["dlq_not_empty"] == "ApproximateNumberOfMessagesVisible"
    assert attr(alarms["dlq_not_empty"].body, "dimensions") == {"QueueName": "${var.dlq_name}"}
    # The bulk lane's dead letters alarm the same way.
    for setting in ("namespace", "metric_name", "statistic", "period", "evaluation_periods", "comparison_operator",
                    "threshold", "treat_missing_data", "ok_actions"):
        assert attr(alarms["bulk_dlq_not_empty"].body, setting) == attr(alarms["dlq_not_empty"].body, setting), setting
    assert attr(alarms["bulk_dlq_not_empty"].body, "dimensions") == {"QueueName": "${var.bulk_dlq_name}"}
    assert metric["oldest_job_age"] == "ApproximateAgeOfOldestMessage"
    assert metric["api_5xx"] == "HTTPCode_Target_5XX_Count"
    assert metric["rds_cpu"] == "CPUUtilization"
    assert metric["rds_free_storage"] == "FreeStorageSpace"
    assert "worker_error_rate" in alarms
    for name, alarm in alarms.items():
        if name == "burn_rate_window":
            # Each window of a burn-rate pair alarms alone silently; its pair's composite
            # alarm notifies (test_slo_alarms.py).
            assert attr(alarm.body, "alarm_actions") == [] and attr(alarm.body, "ok_actions") == [], name
            continue
        assert attr(alarm.body, "alarm_actions") == "${local.alarm_actions}", name
    for composite in tree.resources("aws_cloudwatch_composite_alarm", "modules/observability"):
        assert attr(composite.body, "alarm_actions") == "${local.alarm_actions}", composite
        assert attr(composite.body, "ok_actions") == "${local.alarm_actions}", composite
    assert tree.locals("modules/observability")["alarm_actions"] == ["${var.ops_topic_arn}"]
    assert tree.resources("aws_cloudwatch_dashboard")


def test_observability_watches_the_bulk_lane(tree):
    """Its depth, in-flight count, DLQ and age on the dashboard, its receives in the worker error
    rate (errors of replayed jobs count against every job received), its names from the stack."""
    dashboard = tree.text("modules/observability").split('resource "aws_cloudwatch_dashboard"')[0]
    widgets = tree.locals("modules/observability")["widgets"]
    shown = {
        (m[1], m[3])
        for w in widgets
        for m in w["metrics"]
        if isinstance(m, list) and len(m) >= 4 and m[0] == "AWS/SQS" and m[2] == "QueueName"
    }
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateAgeOfOldestMessage"):
        assert (metric, "${var.bulk_queue_name}") in shown, metric
    assert ("ApproximateNumberOfMessagesVisible", "${var.bulk_dlq_name}") in shown
    assert "FILL(live, 0) + FILL(bulk, 0)" in dashboard, "the backlog widget counts both lanes"
    alarm = tree.resource("aws_cloudwatch_metric_alarm", "worker_error_rate", "modules/observability")
    received = {
        attr(m, "dimensions")["QueueName"]
        for q in blocks(alarm.body, "metric_query")
        for m in blocks(q, "metric")
        if attr(m, "metric_name") == "NumberOfMessagesReceived"
    }
    assert received == {"${var.queue_name}", "${var.bulk_queue_name}"}
    (rate,) = [attr(q, "expression") for q in blocks(alarm.body, "metric_query") if attr(q, "return_data") is True]
    assert "FILL(received, 0) + FILL(received_bulk, 0)" in rate, rate
    call = tree.module_calls("modules/stack")["observability"]
    assert attr(call, "bulk_queue_name") == "${module.queues.bulk_queue_name}"
    assert attr(call, "bulk_dlq_name") == "${module.queues.bulk_dlq_name}"


def test_ops_topic_is_encrypted_and_lets_cloudwatch_publish(tree):
    ops = tree.resource("aws_sns_topic", "ops")
    assert attr(ops.body, "kms_master_key_id")
    assert "CloudWatchAlarmsPublish" in tree.text("modules/notifications")


# --- Roots ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_env_roots_keep_state_in_s3_with_lockfile(tree, env):
    (tf,) = tree.terraform_blocks(env)
    (backend,) = tf["backend"]
    assert list(backend) == ["s3"]
    assert attr(backend["s3"], "use_lockfile") is True
    assert attr(backend["s3"], "encrypt") is True


@pytest.mark.parametrize("env", ENVS)
def test_env_roots_pin_the_aws_provider(tree, env):
    (tf,) = tree.terraform_blocks(env)
    aws = attr(blocks(tf, "required_providers")[0], "aws")
    assert aws["source"] == "hashicorp/aws" and re.fullmatch(r"~> \d+\.\d+", aws["version"])


@pytest.mark.parametrize("env", ENVS)
def test_env_outputs_are_named_like_config_keys(tree, env):
    outputs = set(tree.outputs(env))
    assert {
        "s3_bucket",
        "s3_kms_key_id",
        "sqs_queue_url",
        "sqs_dlq_url",
        "sqs_bulk_queue_url",
        "sqs_bulk_dlq_url",
        "sns_topic_arn",
        "sns_chat_topic_arn",
        "chat_events",
        "database_url",
        "redis_url",
        "aws_region",
    } <= outputs


def test_env_roots_are_thin(tree):
    for env in ENVS:
        assert not tree.resources(module=env) and list(tree.module_calls(env)) == ["stack"]


def test_production_runs_multi_az_database_and_cache(tree):
    stack = tree.module_calls("envs/production")["stack"]
    assert attr(stack, "db_multi_az") is True
    assert attr(stack, "cache_nodes") >= 2
    assert attr(stack, "single_nat_gateway") is False


def test_production_keeps_logs_a_year(tree):
    assert attr(tree.module_calls("envs/production")["stack"], "log_retention_days") >= 365


def test_no_module_uses_a_registry_source(tree):
    for tf, parsed in tree.files.items():
        for call in parsed.get("module", []):
            for name, body in call.items():
                assert attr(body, "source").startswith("."), f"{tf}: module {name}"


def test_every_checkov_skip_has_a_reason():
    lines = (REPO / ".checkov.yaml").read_text().splitlines()
    skip_lines = [i for i, line in enumerate(lines) if re.match(r"\s*- CKV", line)]
    assert skip_lines, "no skips: drop this test's expectation if that changes"
    for i in skip_lines:
        j = i - 1
        while j >= 0 and re.match(r"\s*- CKV", lines[j]):
            j -= 1  # a group of ids may share one reason
        assert lines[j].strip().startswith("#"), f".checkov.yaml: {lines[i].strip()} has no reason comment"


def test_sample_policy_values_are_valid_json_strings():
    # Guard for the renderer: the sample values themselves must not break the JSON.
    json.loads(json.dumps(SAMPLE_ARNS))


def test_the_image_holds_the_ca_bundle_database_urls_verify_against(tree):
    """verify-full needs the RDS CA bundle at the path DATABASE_URL names: the Dockerfile's."""
    path = attr(tree.variables("modules/data")["db_ca_bundle_path"], "default")
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    added = re.findall(r"^ADD\s+(?:--\S+\s+)*(https://\S+)\s+(\S+)\s*$", runtime, re.M)
    assert ("https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem", path) in added, added
