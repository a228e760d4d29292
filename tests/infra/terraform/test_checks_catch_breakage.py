"""The checks in scripts/check-terraform must fail on known-bad samples.

Each test copies terraform/ to a temporary directory, breaks one thing, and asserts that the check
responsible for it reports exactly that. A check that passes everything would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfvalidate
from tfhcl import (
    REPO,
    TERRAFORM,
    Tree,
    backlog_policy_violations,
    cdn_cache_key_violations,
    cdn_read_violations,
    hcl_policy_violations,
    media_put_object_violations,
    originals_retention_violations,
    private_delivery_violations,
    retention_tag_violations,
    s3_encryption_violations,
    sqs_encryption_violations,
    template_policy_violations,
)

UNENCRYPTED_QUEUE = """
resource "aws_sqs_queue" "plain" {
  name = "${var.name}-plain"
}
"""


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, target, ignore=shutil.ignore_patterns(".terraform"))
    return target


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: the sample no longer matches the code"
    path.write_text(text.replace(old, new, 1))


def test_the_unbroken_copy_passes_every_check(copy):
    # Arrange: nothing broken. Act/Assert: the baseline the other tests depart from is clean.
    tree = Tree(copy)
    assert tfvalidate.fmt_findings(copy) == []
    assert tfvalidate.reference_findings(copy) == []
    assert sqs_encryption_violations(tree) == []
    assert hcl_policy_violations(tree) == []
    assert template_policy_violations(copy / "modules/iam/policies") == []
    assert backlog_policy_violations(tree) == []
    assert media_put_object_violations(tree) == []
    assert originals_retention_violations(tree) == []
    assert retention_tag_violations(tree, copy / "modules/iam/policies") == []
    assert cdn_read_violations(tree) == []
    assert private_delivery_violations(tree) == []
    assert cdn_cache_key_violations(tree) == []


def test_fmt_check_flags_a_badly_formatted_file(copy):
    append(copy / "modules/queues/main.tf", '\nlocals {\n      misaligned = 1\n  other = "x"\n}\n')

    findings = tfvalidate.fmt_findings(copy)

    assert [Path(f.where).name for f in findings] == ["main.tf"]
    assert "modules/queues" in findings[0].where


def test_offline_init_flags_a_configuration_error(copy):
    append(copy / "modules/queues/main.tf", UNENCRYPTED_QUEUE.replace('"plain"', '"queue"'))

    findings = tfvalidate.init_findings(copy)

    assert findings, "a duplicate resource must fail the offline init"
    assert all("Duplicate resource" in f.message for f in findings)
    assert any(f.where.endswith("modules/queues") for f in findings)


def test_offline_init_flags_a_syntax_error(copy):
    append(copy / "modules/storage/s3.tf", '\nresource "aws_s3_bucket" "broken" {\n  bucket = \n}\n')

    findings = tfvalidate.init_findings(copy)

    assert any(f.where.endswith("modules/storage") for f in findings)


def test_reference_check_flags_undeclared_names_and_unknown_module_arguments(copy):
    append(copy / "modules/queues/outputs.tf", '\noutput "typo" {\n  value = var.queue_nmae\n}\n')
    replace(copy / "modules/stack/main.tf", "  max_receive_count      = var.max_receive_count\n",
            "  max_receive_count      = var.max_receive_count\n  max_recieve_count      = 3\n")

    messages = [f.message for f in tfvalidate.reference_findings(copy)]

    assert "undeclared variable var.queue_nmae" in messages
    assert "module queues: ../queues has no variable 'max_recieve_count'" in messages


def test_check_cli_exits_non_zero_on_findings(copy, capsys):
    append(copy / "modules/queues/main.tf", "\noutput \"x\" {\n  value = local.nothing_here\n}\n")

    status = tfvalidate.main(["tfvalidate.py", str(copy)])

    assert status == 1
    assert "undeclared local local.nothing_here" in capsys.readouterr().out


def test_unencrypted_queue_fails_the_structural_check(copy):
    append(copy / "modules/queues/main.tf", UNENCRYPTED_QUEUE)

    violations = sqs_encryption_violations(Tree(copy))

    assert violations == [f"aws_sqs_queue.plain ({copy}/modules/queues/main.tf): no kms_master_key_id (SSE-KMS)"]


def test_unencrypted_queue_fails_checkov(copy):
    append(copy / "modules/queues/main.tf", UNENCRYPTED_QUEUE)
    checkov = Path(sys.executable).parent / "checkov"

    result = subprocess.run(
        [str(checkov), "--config-file", str(REPO / ".checkov.yaml"), "-d", str(copy / "modules/queues"),
         "--framework", "terraform", "--skip-download", "--quiet", "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )

    assert result.returncode == 1, result.stderr[-2000:]
    failed = json.loads(result.stdout)["results"]["failed_checks"]
    assert {(c["check_id"], c["resource"]) for c in failed} >= {("CKV_AWS_27", "aws_sqs_queue.plain")}
    assert all(c["resource"] == "aws_sqs_queue.plain" for c in failed), failed


def test_bucket_without_the_service_key_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", 'sse_algorithm     = "aws:kms"', 'sse_algorithm     = "AES256"')

    violations = s3_encryption_violations(Tree(copy))

    assert len(violations) == 1 and "aws_s3_bucket.media" in violations[0]


def test_wildcard_resource_in_a_policy_template_is_caught(copy):
    templates = copy / "modules/iam/policies"
    replace(templates / "worker.json.tpl", '"Resource": ["${topic_arn}", "${chat_topic_arn}"]', '"Resource": ["*"]')

    violations = template_policy_violations(templates)

    assert violations == ["worker.json.tpl statement PublishEvents: wildcard resource \"*\" for ['sns:Publish']"]


def test_wildcard_resource_in_a_policy_document_is_caught(copy):
    append(copy / "modules/queues/main.tf", """
data "aws_iam_policy_document" "too_broad" {
  statement {
    sid       = "Everything"
    actions   = ["sqs:SendMessage"]
    resources = ["*"]
  }
}
""")

    violations = hcl_policy_violations(Tree(copy))

    assert len(violations) == 1 and "too_broad" in violations[0] and "Everything" in violations[0]


def test_inline_json_policy_is_caught(copy):
    append(copy / "modules/iam/main.tf", """
resource "aws_iam_role_policy" "inline" {
  name = "inline"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "s3:GetObject", Resource = "*" }]
  })
}
""")

    violations = hcl_policy_violations(Tree(copy))

    assert len(violations) == 1 and "aws_iam_role_policy.inline" in violations[0]


def test_autoscaling_on_queue_depth_alone_is_caught(copy):
    replace(copy / "modules/autoscaling/main.tf", 'expression  = "visible / tasks"', 'expression  = "visible"')

    violations = backlog_policy_violations(Tree(copy))

    assert violations and "is not a / b" in violations[0]


def test_autoscaling_that_forgets_the_bulk_lane_is_caught(copy):
    # A replay of a million jobs on the bulk lane would then never add a worker.
    replace(copy / "modules/autoscaling/main.tf", 'expression  = "FILL(live, 0) + FILL(bulk, 0)"', 'expression  = "FILL(live, 0)"')

    violations = backlog_policy_violations(Tree(copy))

    assert violations and "the backlog counts queues ['${var.queue_name}']" in violations[0], violations


# The DenyNonKmsEncryption statement as it was before presigned uploads: ...IfExists makes a missing
# header count as "not aws:kms", so every header-less (presigned, browser) PUT was denied.
DENY_NON_KMS_WITH_NULL = """    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }"""
DENY_NON_KMS_IF_EXISTS = """    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }"""


def test_bucket_policy_denying_header_less_puts_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", DENY_NON_KMS_WITH_NULL, DENY_NON_KMS_IF_EXISTS)

    violations = media_put_object_violations(Tree(copy))

    assert violations == ["presigned PUT without encryption headers (bucket default): denied by ['DenyNonKmsEncryption']"]


def test_bucket_policy_deny_without_presence_check_is_caught(copy):
    # StringNotEquals alone is also true for a missing key.
    replace(copy / "modules/storage/s3.tf", DENY_NON_KMS_WITH_NULL, DENY_NON_KMS_IF_EXISTS.replace("IfExists", ""))

    violations = media_put_object_violations(Tree(copy))

    assert violations == ["presigned PUT without encryption headers (bucket default): denied by ['DenyNonKmsEncryption']"]


def test_bucket_policy_allowing_other_encryption_is_caught(copy):
    s3 = copy / "modules/storage/s3.tf"
    replace(s3, '      values   = ["aws:kms"]\n', '      values   = ["aws:kms", "AES256"]\n')
    # The aws:kms-without-key-id deny turned into an Allow (which grants nothing here).
    replace(s3, 'sid       = "DenyKmsWithoutServiceKeyId"\n    effect    = "Deny"', 'sid       = "DenyKmsWithoutServiceKeyId"\n    effect    = "Allow"')

    violations = media_put_object_violations(Tree(copy))

    assert violations == ["PUT naming aws:kms without a key id: not denied", "PUT asking for SSE-S3: not denied"]


RETENTION_FOR_EACH = "    for_each = var.originals_retention_choices\n"


def test_a_retention_choice_without_its_rule_is_caught(copy):
    # The rules no longer follow the variable: 365 is still a choice (the binary accepts it and
    # the worker tags with it), but nothing expires those originals.
    replace(copy / "modules/storage/s3.tf", RETENTION_FOR_EACH, "    for_each = [30, 90]\n")

    violations = originals_retention_violations(Tree(copy))

    assert violations == [
        "choice 365: 0 lifecycle rules expire originals/ objects tagged image-service-retention-days=365 (want 1)"
    ]


def test_a_rule_for_a_value_that_is_no_choice_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", RETENTION_FOR_EACH, "    for_each = [30, 90, 365, 7]\n")

    violations = originals_retention_violations(Tree(copy))

    assert violations == ["rules ['expire-originals-after-7-days']: act on image-service-retention-days='7', not a choice"]


def test_retention_rule_expiring_on_the_wrong_day_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", "        days = rule.value\n", "        days = 30\n")

    violations = originals_retention_violations(Tree(copy))

    assert violations == [
        "choice 90: rule expire-originals-after-90-days expires after 30 days",
        "choice 365: rule expire-originals-after-365-days expires after 30 days",
    ]


def test_expiring_originals_without_the_tag_is_caught(copy):
    # Dropping the tag from the filter would delete every original, processed or not.
    s3 = copy / "modules/storage/s3.tf"
    text = s3.read_text()
    start = text.index("      filter {\n        and {")
    end = text.index("      expiration {\n        days = rule.value")
    s3.write_text(text[:start] + '      filter {\n        prefix = "originals/"\n      }\n\n' + text[end:])

    violations = originals_retention_violations(Tree(copy))

    assert violations[:3] == [
        f"rule expire-originals-after-{d}-days: expires objects under originals/ without requiring the image-service-retention-days tag"
        for d in (30, 90, 365)
    ]
    assert "choice 30: 0 lifecycle rules expire originals/ objects tagged image-service-retention-days=30 (want 1)" in violations


def test_a_tag_key_the_worker_may_not_set_is_caught(copy):
    # The lifecycle filters on one key, the worker's grant lets it set another: nothing expires.
    templates = copy / "modules/iam/policies"
    replace(templates / "worker.json.tpl", '["image-service-retention-days"]', '["retention-days"]')

    violations = retention_tag_violations(Tree(copy), templates)

    assert violations == [
        "worker.json.tpl statement TagOriginalsForRetention: may set tag keys ['retention-days'], want ['image-service-retention-days']"
    ]


def test_a_lifecycle_tag_key_other_than_the_contracts_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", 'originals_retention_tag = "image-service-retention-days"',
            'originals_retention_tag = "retention-days"')
    tree = Tree(copy)

    tag_violations = retention_tag_violations(tree, copy / "modules/iam/policies")
    rule_violations = originals_retention_violations(tree)

    assert tag_violations == [
        "modules/storage local.originals_retention_tag is 'retention-days', the contract says 'image-service-retention-days'",
        "the originals/ lifecycle rules filter on tag keys ['retention-days'], want ['image-service-retention-days']",
    ]
    assert "choice 30: 0 lifecycle rules expire originals/ objects tagged image-service-retention-days=30 (want 1)" in rule_violations


def test_tagging_granted_beyond_originals_is_caught(copy):
    templates = copy / "modules/iam/policies"
    replace(templates / "worker.json.tpl", '"Action": ["s3:PutObjectTagging"],\n      "Resource": ["${bucket_arn}/originals/*"]',
            '"Action": ["s3:PutObjectTagging"],\n      "Resource": ["${bucket_arn}/originals/*", "${bucket_arn}/variants/*"]')

    violations = retention_tag_violations(Tree(copy), templates)

    assert violations == [
        "worker.json.tpl statement TagOriginalsForRetention: s3:PutObjectTagging on "
        "['arn:aws:s3:::image-service-test-media/originals/*', 'arn:aws:s3:::image-service-test-media/variants/*'], want only originals/*"
    ]


# --- CDN delivery (issue #21) ------------------------------------------------------------------

TRUSTED_KEY_GROUPS = "    trusted_key_groups = local.signing ? [aws_cloudfront_key_group.signers[0].id] : []\n"


def test_private_behaviour_that_trusts_no_key_group_is_caught(copy):
    # An empty trusted_key_groups means "no signature needed": signed-mode variants, public.
    replace(copy / "modules/delivery/main.tf", TRUSTED_KEY_GROUPS, "    trusted_key_groups = []\n")

    violations = private_delivery_violations(Tree(copy))

    assert violations == [
        "/private/* trusted_key_groups = [], want the key group whenever local.signing"
    ]


def test_private_behaviour_without_the_404_guard_for_no_keys_is_caught(copy):
    # Without keys, trusted_key_groups is empty: only the 404 function keeps private/ closed.
    replace(copy / "modules/delivery/main.tf", "for_each = local.signing ? [] : [aws_cloudfront_function.not_found.arn]",
            "for_each = []")

    violations = private_delivery_violations(Tree(copy))

    assert len(violations) == 1 and violations[0].startswith("/private/* function associations")


def test_default_behaviour_that_reaches_the_bucket_is_caught(copy):
    main = copy / "modules/delivery/main.tf"
    text = main.read_text()
    start = text.index("  default_cache_behavior {")
    guard = text.index("    function_association {", start)
    end = text.index("    }\n", guard) + len("    }\n")
    main.write_text(text[:guard] + text[end:])

    violations = private_delivery_violations(Tree(copy))

    assert violations == ["the default behaviour does not answer with the 404 function"]


def test_cache_policy_keyed_on_the_query_string_is_caught(copy):
    # The signature parameters would split every signed variant into one entry per URL.
    replace(copy / "modules/delivery/main.tf", 'query_string_behavior = "none"', 'query_string_behavior = "all"')

    violations = cdn_cache_key_violations(Tree(copy))

    assert violations == [
        f"{name}: cache policy variants has query_string_behavior ['all'], want none"
        for name in ("/variants/*", "/private/*", "default")
    ]


def test_cdn_reading_originals_is_caught(copy):
    replace(copy / "modules/storage/s3.tf", '      "${aws_s3_bucket.media.arn}/private/*",\n',
            '      "${aws_s3_bucket.media.arn}/private/*",\n      "${aws_s3_bucket.media.arn}/originals/*",\n')

    violations = cdn_read_violations(Tree(copy))

    assert len(violations) == 1 and violations[0].startswith("media bucket policy CdnReadsDeliveryPrefixes: resources")


def test_cdn_grant_for_any_distribution_is_caught(copy):
    # Without AWS:SourceArn, every CloudFront distribution of every account could read them.
    replace(copy / "modules/storage/s3.tf", '      variable = "AWS:SourceArn"', '      variable = "aws:SourceAccount"')

    violations = cdn_read_violations(Tree(copy))

    assert violations == [
        "media bucket policy CdnReadsDeliveryPrefixes: conditions "
        "[('StringEquals', 'aws:SourceAccount', ('${module.delivery.distribution_arn}',))], "
        "want [('StringEquals', 'AWS:SourceArn', ('${module.delivery.distribution_arn}',))]"
    ]


def test_cdn_key_grant_beyond_decrypt_is_caught(copy):
    replace(copy / "modules/storage/kms.tf", 'sid       = "CdnDecryptsDeliveredVariants"\n    actions   = ["kms:Decrypt"]',
            'sid       = "CdnDecryptsDeliveredVariants"\n    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]')

    violations = cdn_read_violations(Tree(copy))

    assert violations == [
        "key policy CdnDecryptsDeliveredVariants: Allow ['kms:Decrypt', 'kms:GenerateDataKey'], want Allow kms:Decrypt only"
    ]
