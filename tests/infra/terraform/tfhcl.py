"""Reading terraform/ for the structural tests, and the policy checks they share.

Parsed with python-hcl2 as packaged by checkov (bc-python-hcl2), whose shape is:
- attributes are wrapped in a one-element list: body["name"] == ["value"];
- nested blocks are lists of dicts: body["statement"] == [{...}, {...}];
- expressions stay strings: "${aws_sqs_queue.jobs.arn}".

The check functions return human-readable violations (empty = fine), so the same code runs against
the real tree and against deliberately broken copies (test_checks_catch_breakage.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import hcl2

REPO = Path(__file__).resolve().parents[3]
TERRAFORM = REPO / "terraform"
POLICY_TEMPLATES = TERRAFORM / "modules" / "iam" / "policies"

# Actions AWS defines without any resource type: a statement can only grant them on "*".
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html (the
# collector sidecars' trace grant, modules/compute/ecs/metrics.tf). Only the actions granted are
# listed: an entry here lets any policy hold that action on "*" unnoticed.
ACTIONS_WITHOUT_RESOURCE_TYPES = {
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
}

# Buckets allowed SSE-S3 instead of the service KMS key, with the reason (checkov CKV_AWS_145).
SSE_S3_BUCKETS = {("modules/storage", "logs"): "ALB and S3 access-log delivery support SSE-S3 only"}

# Sample values for rendering policy templates outside Terraform.
SAMPLE_ARNS = {
    "bucket_arn": "arn:aws:s3:::image-service-test-media",
    "queue_arn": "arn:aws:sqs:eu-west-1:123456789012:image-service-test-jobs",
    "dlq_arn": "arn:aws:sqs:eu-west-1:123456789012:image-service-test-jobs-dlq",
    "bulk_queue_arn": "arn:aws:sqs:eu-west-1:123456789012:image-service-test-jobs-bulk",
    "bulk_dlq_arn": "arn:aws:sqs:eu-west-1:123456789012:image-service-test-jobs-bulk-dlq",
    "topic_arn": "arn:aws:sns:eu-west-1:123456789012:image-service-test-events",
    "chat_topic_arn": "arn:aws:sns:eu-west-1:123456789012:image-service-test-chat",
    "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000",
    "ecr_repository_arn": "arn:aws:ecr:eu-west-1:123456789012:repository/image-service-test",
    "api_log_group_arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/image-service-test/api",
    "worker_log_group_arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/image-service-test/worker",
    "ops_log_group_arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/image-service-test/ops",
    "db_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0000-AbCdEf",
    "db_app_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:image-service-test/db-app-AbCdEf",
    "admin_api_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:image-service-test/admin-api-key-AbCdEf",
    "delivery_signing_key_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:image-service-test/delivery-signing-key-AbCdEf",
    "ecs_tasks_arn": "arn:aws:ecs:eu-west-1:123456789012:task/image-service-test/*",
    "region": "eu-west-1",
}

TEMPLATE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Block:
    """One resource or data block."""

    type: str
    name: str
    body: dict
    file: Path

    def __str__(self) -> str:
        return f"{self.type}.{self.name} ({self.file})"


def attr(body: dict, key: str, default: Any = None) -> Any:
    """The value of attribute `key` (unwrapped from python-hcl2's one-element list)."""
    value = body.get(key)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return default if value is None else value


def blocks(body: dict, key: str) -> list[dict]:
    """The nested blocks named `key`."""
    value = body.get(key, [])
    return [b for b in value if isinstance(b, dict)]


class Tree:
    """Every .tf file under a terraform/ root, parsed."""

    def __init__(self, root: Path = TERRAFORM) -> None:
        self.root = root.resolve()
        self.files: dict[Path, dict] = {}
        for tf in sorted(self.root.rglob("*.tf")):
            if ".terraform" in tf.parts:
                continue
            with tf.open() as fh:
                self.files[tf] = hcl2.load(fh)

    def rel(self, path: Path) -> str:
        return path.parent.relative_to(self.root).as_posix()

    def _blocks(self, kind: str, rtype: str | None, module: str | None) -> Iterator[Block]:
        for tf, parsed in self.files.items():
            if module is not None and self.rel(tf) != module:
                continue
            for entry in parsed.get(kind, []):
                for t, named in entry.items():
                    if rtype is None or t == rtype:
                        for name, body in named.items():
                            yield Block(t, name, body, tf)

    def resources(self, rtype: str | None = None, module: str | None = None) -> list[Block]:
        return list(self._blocks("resource", rtype, module))

    def data(self, rtype: str | None = None, module: str | None = None) -> list[Block]:
        return list(self._blocks("data", rtype, module))

    def resource(self, rtype: str, name: str, module: str | None = None) -> Block:
        found = [b for b in self.resources(rtype, module) if b.name == name]
        assert len(found) == 1, f"expected one {rtype}.{name} in {module or 'terraform/'}, found {len(found)}"
        return found[0]

    def module_dir(self, block: Block) -> str:
        return self.rel(block.file)

    def locals(self, module: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tf, parsed in self.files.items():
            if self.rel(tf) == module:
                for entry in parsed.get("locals", []):
                    out.update({k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in entry.items()})
        return out

    def variables(self, module: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for tf, parsed in self.files.items():
            if self.rel(tf) == module:
                for entry in parsed.get("variable", []):
                    out.update(entry)
        return out

    def module_calls(self, module: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for tf, parsed in self.files.items():
            if self.rel(tf) == module:
                for entry in parsed.get("module", []):
                    out.update(entry)
        return out

    def outputs(self, module: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for tf, parsed in self.files.items():
            if self.rel(tf) == module:
                for entry in parsed.get("output", []):
                    out.update(entry)
        return out

    def terraform_blocks(self, module: str) -> list[dict]:
        return [b for tf, parsed in self.files.items() if self.rel(tf) == module for b in parsed.get("terraform", [])]

    def text(self, module: str) -> str:
        return "\n".join(tf.read_text() for tf in self.files if self.rel(tf) == module)


def refers_to(expr: Any, target: str) -> bool:
    """Whether an expression string references `target` (e.g. aws_s3_bucket.media)."""
    return isinstance(expr, str) and re.search(rf"(?<![\w.]){re.escape(target)}\b", expr) is not None


# --- Encryption -----------------------------------------------------------------------------------


def sqs_encryption_violations(tree: Tree) -> list[str]:
    """Every SQS queue uses SSE-KMS with a key of ours."""
    return [
        f"{q}: no kms_master_key_id (SSE-KMS)"
        for q in tree.resources("aws_sqs_queue")
        if not attr(q.body, "kms_master_key_id")
    ]


def sns_encryption_violations(tree: Tree) -> list[str]:
    """Every SNS topic is encrypted with KMS."""
    return [
        f"{t}: no kms_master_key_id" for t in tree.resources("aws_sns_topic") if not attr(t.body, "kms_master_key_id")
    ]


def s3_encryption_violations(tree: Tree) -> list[str]:
    """Every bucket has a default-encryption resource: SSE-KMS with bucket keys, or SSE-S3 where
    the bucket is in SSE_S3_BUCKETS."""
    violations = []
    for bucket in tree.resources("aws_s3_bucket"):
        module = tree.rel(bucket.file)
        ref = f"aws_s3_bucket.{bucket.name}"
        configs = [
            c
            for c in tree.resources("aws_s3_bucket_server_side_encryption_configuration", module)
            if refers_to(attr(c.body, "bucket"), ref)
        ]
        if len(configs) != 1:
            violations.append(f"{bucket}: {len(configs)} default-encryption configurations (want 1)")
            continue
        for rule in blocks(configs[0].body, "rule"):
            defaults = blocks(rule, "apply_server_side_encryption_by_default")
            algorithm = attr(defaults[0], "sse_algorithm") if defaults else None
            if (module, bucket.name) in SSE_S3_BUCKETS:
                if algorithm != "AES256":
                    violations.append(f"{bucket}: expected SSE-S3 (AES256), found {algorithm}")
                continue
            if algorithm != "aws:kms" or not attr(defaults[0], "kms_master_key_id"):
                violations.append(f"{bucket}: default encryption is {algorithm}, want aws:kms with our key")
            if attr(rule, "bucket_key_enabled") is not True:
                violations.append(f"{bucket}: bucket keys not enabled")
    return violations


# --- IAM --------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statement_violations(where: str, actions: list, resources: list) -> list[str]:
    if "*" not in resources:
        return []
    if actions and set(actions) <= ACTIONS_WITHOUT_RESOURCE_TYPES:
        return []
    return [f"{where}: wildcard resource \"*\" for {sorted(actions)}"]


def hcl_policy_violations(tree: Tree) -> list[str]:
    """No aws_iam_policy_document statement grants on "*", and no policy is inline JSON (which
    would escape this check): policies are documents or rendered templates."""
    violations = []
    for doc in tree.data("aws_iam_policy_document"):
        statements = blocks(doc.body, "statement")
        for dyn in blocks(doc.body, "dynamic"):
            generated = dyn.get("statement")
            for gen in generated if isinstance(generated, list) else [generated]:
                if isinstance(gen, dict):
                    statements.extend(blocks(gen, "content"))
        for i, st in enumerate(statements):
            sid = attr(st, "sid", f"#{i}")
            actions = _as_list(attr(st, "actions")) + _as_list(attr(st, "not_actions"))
            for key in ("resources", "not_resources"):
                violations += _statement_violations(f"{doc} statement {sid}", actions, _as_list(attr(st, key)))
    for res in tree.resources():
        for key in ("policy", "assume_role_policy"):
            value = attr(res.body, key)
            if isinstance(value, str) and ("Statement" in value or '"Resource"' in value):
                violations.append(f"{res}: inline JSON {key}; use aws_iam_policy_document or a policies/*.json.tpl")
    return violations


def template_variables(path: Path) -> set[str]:
    """The ${name} placeholders of a policy template."""
    return set(TEMPLATE_VAR.findall(path.read_text()))


def render_template(path: Path, values: dict[str, str] = SAMPLE_ARNS) -> dict:
    """Fill a policy template the way templatefile() does for plain ${name} placeholders."""
    text = path.read_text()
    missing = template_variables(path) - set(values)
    if missing:
        raise KeyError(f"{path.name}: no value for {sorted(missing)}")
    return json.loads(TEMPLATE_VAR.sub(lambda m: values[m.group(1)], text))


def template_policy_violations(templates: Path = POLICY_TEMPLATES) -> list[str]:
    """No statement of any policy template grants on "*" (outside ACTIONS_WITHOUT_RESOURCE_TYPES)."""
    violations = []
    for path in sorted(templates.glob("*.json.tpl")):
        try:
            doc = render_template(path)
        except (KeyError, json.JSONDecodeError) as err:
            violations.append(f"{path.name}: does not render to JSON: {err}")
            continue
        for i, st in enumerate(_as_list(doc.get("Statement"))):
            actions = _as_list(st.get("Action")) + _as_list(st.get("NotAction"))
            for key in ("Resource", "NotResource"):
                violations += _statement_violations(
                    f"{path.name} statement {st.get('Sid', i)}", actions, _as_list(st.get(key))
                )
            if "Resource" not in st and "NotResource" not in st:
                violations.append(f"{path.name} statement {st.get('Sid', i)}: no Resource")
    return violations


def granted(doc: dict) -> set[tuple[str, str]]:
    """(action, resource) pairs an Allow-only policy grants."""
    pairs = set()
    for st in _as_list(doc.get("Statement")):
        assert st.get("Effect") == "Allow", st
        for action in _as_list(st.get("Action")):
            for resource in _as_list(st.get("Resource")):
                pairs.add((action, resource))
    return pairs


# --- Bucket policy on PutObject ------------------------------------------------------------------

# The service key as the media bucket policy names it (an expression, compared literally).
MEDIA_KEY = "${aws_kms_key.this.arn}"

# Request contexts of a PutObject to the media bucket (condition key -> value; absent = not sent),
# over TLS 1.3, and whether the bucket policy must let each through. A presigned browser PUT sends
# no encryption header: the bucket's default encryption (the service key) applies.
PUT_OBJECT_CASES: dict[str, tuple[dict[str, str], bool]] = {
    "presigned PUT without encryption headers (bucket default)": ({}, True),
    "PUT naming aws:kms and the service key": (
        {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": MEDIA_KEY},
        True,
    ),
    # S3 would use the AWS managed key aws/s3, not ours.
    "PUT naming aws:kms without a key id": ({"s3:x-amz-server-side-encryption": "aws:kms"}, False),
    "PUT naming aws:kms and another key": (
        {
            "s3:x-amz-server-side-encryption": "aws:kms",
            "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:eu-west-1:123456789012:key/other",
        },
        False,
    ),
    "PUT asking for SSE-S3": ({"s3:x-amz-server-side-encryption": "AES256"}, False),
    "PUT asking for DSSE-KMS with the service key": (
        {"s3:x-amz-server-side-encryption": "aws:kms:dsse", "s3:x-amz-server-side-encryption-aws-kms-key-id": MEDIA_KEY},
        False,
    ),
}
SECURE_REQUEST = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


def _condition_holds(test: str, key: str, values: list, context: dict[str, str]) -> bool:
    """One condition block, with IAM's semantics for a key missing from the request context:
    Null tests presence; ...IfExists is true when the key is missing; any other positive operator
    is false and any negated one (StringNotEquals, ...) is true.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"""
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    if test == "Null":
        return (key not in context) == (values == ["true"])
    if_exists = test.endswith("IfExists")
    base = test.removesuffix("IfExists")
    negated = "Not" in base
    if key not in context:
        return True if if_exists else negated
    actual = context[key]
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals", "Bool"):
        match = actual in values
    elif base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        match = any(re.fullmatch(re.escape(v).replace(r"\*", ".*").replace(r"\?", "."), actual) for v in values)
    elif base == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    else:
        raise NotImplementedError(f"condition operator {test} is not modelled")
    return not match if negated else match


def denying_statements(doc_body: dict, action: str, context: dict[str, str]) -> list[str]:
    """Sids of the Deny statements of an aws_iam_policy_document that apply to `action` in
    `context` (every condition block must hold; values of one block are ORed)."""
    denied = []
    for i, st in enumerate(blocks(doc_body, "statement")):
        if attr(st, "effect", "Allow") != "Deny":
            continue
        actions = _as_list(attr(st, "actions"))
        service = action.split(":")[0]
        if action not in actions and f"{service}:*" not in actions and "*" not in actions:
            continue
        if all(
            _condition_holds(attr(c, "test"), attr(c, "variable"), _as_list(attr(c, "values")), context)
            for c in blocks(st, "condition")
        ):
            denied.append(attr(st, "sid", f"#{i}"))
    return denied


def media_put_object_violations(tree: Tree) -> list[str]:
    """The media bucket policy lets presigned (header-less) and correctly encrypted PUTs through
    and denies every other encryption choice."""
    policy = tree.resource("aws_s3_bucket_policy", "media", "modules/storage")
    doc_name = re.search(r"data\.aws_iam_policy_document\.(\w+)\.json", attr(policy.body, "policy")).group(1)
    (doc,) = [d for d in tree.data("aws_iam_policy_document", "modules/storage") if d.name == doc_name]
    violations = []
    for case, (headers, allowed) in PUT_OBJECT_CASES.items():
        denied = denying_statements(doc.body, "s3:PutObject", dict(SECURE_REQUEST, **headers))
        if allowed and denied:
            violations.append(f"{case}: denied by {denied}")
        if not allowed and not denied:
            violations.append(f"{case}: not denied")
    return violations


# --- Autoscaling --------------------------------------------------------------------------------


# The queues whose visible messages are the workers' backlog: the live lane and the bulk lane
# (replays, reprocessing), which the same workers drain.
BACKLOG_QUEUES = ("${var.queue_name}", "${var.bulk_queue_name}")
_SUM_TERM = re.compile(r"\s*(?:FILL\(\s*(\w+)\s*,\s*0\s*\)|(\w+))\s*")


def _summed_metrics(mid: str, by_id: dict[str, dict], seen: frozenset = frozenset()) -> list[tuple] | None:
    """The (namespace, metric name, QueueName) of every metric that metric `mid` adds up: itself
    when it is a metric, else the terms of its expression, each an id or FILL(id, 0), joined by
    `+`. None when it is anything else (or refers to itself)."""
    metric = by_id.get(mid)
    if metric is None or mid in seen:
        return None
    expression = attr(metric, "expression")
    if expression:
        found: list[tuple] = []
        for term in str(expression).split("+"):
            match = _SUM_TERM.fullmatch(term)
            inner = match and _summed_metrics(match.group(1) or match.group(2), by_id, seen | {mid})
            if not inner:
                return None
            found += inner
        return found
    found = []
    for stat in blocks(metric, "metric_stat"):
        for m in blocks(stat, "metric"):
            queues = [attr(d, "value") for d in blocks(m, "dimensions") if attr(d, "name") == "QueueName"]
            found.append((attr(m, "namespace"), attr(m, "metric_name"), queues[0] if len(queues) == 1 else None))
    return found or None


def backlog_policy_violations(tree: Tree, queues: tuple[str, ...] = BACKLOG_QUEUES) -> list[str]:
    """A target-tracking policy scales on visible / tasks: visible the sum of
    ApproximateNumberOfMessagesVisible over exactly `queues` (each once), tasks RunningTaskCount."""
    candidates = [
        p for p in tree.resources("aws_appautoscaling_policy") if attr(p.body, "policy_type") == "TargetTrackingScaling"
    ]
    problems: list[str] = []
    for policy in candidates:
        for cfg in blocks(policy.body, "target_tracking_scaling_policy_configuration"):
            for spec in blocks(cfg, "customized_metric_specification"):
                by_id = {attr(m, "id"): m for m in blocks(spec, "metrics")}
                returned = [m for m in by_id.values() if attr(m, "return_data") is True]
                if len(returned) != 1 or not attr(returned[0], "expression"):
                    problems.append(f"{policy}: exactly one returned metric must be an expression")
                    continue
                match = re.fullmatch(r"\s*(\w+)\s*/\s*(\w+)\s*", attr(returned[0], "expression"))
                if not match:
                    problems.append(f"{policy}: expression {attr(returned[0], 'expression')!r} is not a / b")
                    continue
                numerator = _summed_metrics(match.group(1), by_id) or []
                denominator = _summed_metrics(match.group(2), by_id) or []
                summed = [q for ns, name, q in numerator if (ns, name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
                if not numerator or len(summed) != len(numerator):
                    problems.append(f"{policy}: {match.group(1)} is not a sum of ApproximateNumberOfMessagesVisible: {numerator}")
                    continue
                if sorted(summed) != sorted(queues):
                    problems.append(f"{policy}: the backlog counts queues {sorted(map(str, summed))}, want {sorted(queues)}")
                    continue
                if [(ns, name) for ns, name, _ in denominator] != [("ECS/ContainerInsights", "RunningTaskCount")]:
                    problems.append(f"{policy}: the backlog is divided by {denominator}, not RunningTaskCount")
                    continue
                return []
    return problems or ["no target-tracking policy on backlog per task"]


# --- Originals retention (issue #20) ---------------------------------------------------------------

# The tag the worker puts on originals/{image_id} once its job succeeded under a retention of N days
# (value: N in decimal), as the binary's contract names it. The lifecycle rules and the worker's
# grant must use exactly this key, or tagged originals are never deleted.
RETENTION_TAG = "image-service-retention-days"
RETENTION_PREFIX = "originals/"

_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_UNRESOLVED = object()


def _resolve(expr: Any, tree: Tree, module: str, iterator: dict[str, Any]) -> Any:
    """The value of the few expression shapes a lifecycle rule uses, or the expression itself when
    it is anything else (which then matches nothing the checks look for): literals, `var.X` (its
    default), `local.X`, `<iterator>.value`, `tostring(...)` of those, and string templates."""
    if not isinstance(expr, str):
        return expr

    def value_of(inner: str) -> Any:
        inner = inner.strip()
        call = re.fullmatch(r"tostring\((.*)\)", inner)
        if call:
            value = value_of(call.group(1))
            return value if value is _UNRESOLVED else str(value)
        if inner in iterator:
            return iterator[inner]
        ref = re.fullmatch(r"(var|local)\.(\w+)", inner)
        if ref and ref.group(1) == "var" and ref.group(2) in tree.variables(module):
            return _resolve(attr(tree.variables(module)[ref.group(2)], "default"), tree, module, iterator)
        if ref and ref.group(1) == "local" and ref.group(2) in tree.locals(module):
            return _resolve(tree.locals(module)[ref.group(2)], tree, module, iterator)
        return _UNRESOLVED

    whole = re.fullmatch(r"\$\{([^{}]*)\}", expr)
    if whole:
        value = value_of(whole.group(1))
        return expr if value is _UNRESOLVED else value
    values = {m.group(0): value_of(m.group(1)) for m in _INTERPOLATION.finditer(expr)}
    if any(v is _UNRESOLVED for v in values.values()):
        return expr
    return _INTERPOLATION.sub(lambda m: str(values[m.group(0)]), expr)



@dataclass(frozen=True)
class LifecycleRule:
    """One rule of a lifecycle configuration, static or generated by a dynamic block, with the
    expressions it uses resolved as far as _resolve can."""

    id: Any
    status: Any
    prefix: Any
    tags: dict
    # Other filter conditions (object_size_greater_than, ...), which only narrow the rule.
    narrowed_by: list
    expiration_days: Any
    transition_days: Any


def lifecycle_rules(tree: Tree, name: str = "media", module: str = "modules/storage") -> list[LifecycleRule]:
    """The rules of aws_s3_bucket_lifecycle_configuration.<name>, dynamic "rule" blocks expanded
    over their for_each (a list literal or a variable's default)."""
    config = tree.resource("aws_s3_bucket_lifecycle_configuration", name, module)
    generated: list[tuple[dict, dict[str, Any]]] = [(r, {}) for r in blocks(config.body, "rule")]
    for dyn in blocks(config.body, "dynamic"):
        spec = dyn.get("rule")
        for gen in spec if isinstance(spec, list) else [spec]:
            if not isinstance(gen, dict):
                continue
            iterator = attr(gen, "iterator", "rule")
            items = _resolve(attr(gen, "for_each"), tree, module, {})
            if not isinstance(items, list):
                raise ValueError(f"{config}: dynamic rule for_each {attr(gen, 'for_each')!r} is not a list this check can expand")
            for content in blocks(gen, "content"):
                for item in items:
                    generated.append((content, {f"{iterator}.value": item, f"{iterator}.key": item}))

    rules = []
    for body, iterator in generated:
        def value(b: dict, key: str) -> Any:
            return _resolve(attr(b, key), tree, module, iterator)

        filters = blocks(body, "filter")
        filt = filters[0] if filters else {}
        conjunction = blocks(filt, "and")
        where = conjunction[0] if conjunction else filt
        tags: dict = {}
        # and { tags = { k = v } } is a map attribute; a lone filter { tag { key, value } } a block.
        tag_map = attr(where, "tags", None)
        for k, v in (tag_map if isinstance(tag_map, dict) else {}).items():
            # python-hcl2 writes a computed key (local.x) as "local.x".
            if re.fullmatch(r"\(?(var|local)\.\w+\)?", k):
                k = _resolve("${" + k.strip("()") + "}", tree, module, iterator)
            tags[k] = _resolve(v, tree, module, iterator)
        for tag_block in blocks(filt, "tag"):
            tags[value(tag_block, "key")] = value(tag_block, "value")
        narrowed_by = sorted(k for k in where if k not in ("prefix", "tags", "tag") and not k.startswith("__"))
        expirations = blocks(body, "expiration")
        transitions = blocks(body, "transition")
        rules.append(
            LifecycleRule(
                id=value(body, "id"),
                status=value(body, "status"),
                prefix=value(where, "prefix") if "prefix" in where else None,
                tags=tags,
                narrowed_by=narrowed_by,
                expiration_days=value(expirations[0], "days") if expirations and "days" in expirations[0] else None,
                transition_days=value(transitions[0], "days") if transitions and "days" in transitions[0] else None,
            )
        )
    return rules


def retention_choices(tree: Tree, module: str = "modules/storage") -> list:
    """The default of originals_retention_choices in `module`."""
    return attr(tree.variables(module)["originals_retention_choices"], "default")


def _covers_originals(rule: LifecycleRule) -> bool:
    prefix = rule.prefix or ""
    return isinstance(prefix, str) and (RETENTION_PREFIX.startswith(prefix) or prefix.startswith(RETENTION_PREFIX))


def originals_retention_violations(tree: Tree) -> list[str]:
    """Every retention choice has exactly one enabled rule that expires, after exactly that many
    days, the objects under originals/ tagged RETENTION_TAG = "<days>"; no rule expires originals
    that do not carry the tag (an original is tagged only once its job has succeeded); no rule
    acts on the tag with a value that is not a choice."""
    rules = lifecycle_rules(tree)
    choices = retention_choices(tree)
    violations = []
    for rule in rules:
        if rule.expiration_days is not None and _covers_originals(rule) and RETENTION_TAG not in rule.tags:
            violations.append(f"rule {rule.id}: expires objects under {RETENTION_PREFIX} without requiring the {RETENTION_TAG} tag")
        if rule.tags and RETENTION_TAG not in rule.tags and _covers_originals(rule):
            violations.append(f"rule {rule.id}: filters {RETENTION_PREFIX} on tags {sorted(rule.tags)}, not {RETENTION_TAG}")
    by_value: dict[Any, list[LifecycleRule]] = {}
    for rule in rules:
        if RETENTION_TAG in rule.tags:
            by_value.setdefault(rule.tags[RETENTION_TAG], []).append(rule)
    for days in choices:
        matching = [
            r
            for r in by_value.get(str(days), [])
            if r.prefix == RETENTION_PREFIX and set(r.tags) == {RETENTION_TAG} and not r.narrowed_by
        ]
        if len(matching) != 1:
            violations.append(
                f"choice {days}: {len(matching)} lifecycle rules expire {RETENTION_PREFIX} objects tagged {RETENTION_TAG}={days} (want 1)"
            )
            continue
        (rule,) = matching
        if rule.status != "Enabled":
            violations.append(f"choice {days}: rule {rule.id} is {rule.status}")
        if rule.expiration_days != days:
            violations.append(f"choice {days}: rule {rule.id} expires after {rule.expiration_days} days")
    for value, tagged in sorted(by_value.items(), key=lambda kv: str(kv[0])):
        if value not in {str(d) for d in choices}:
            violations.append(f"rules {[r.id for r in tagged]}: act on {RETENTION_TAG}={value!r}, not a choice")
    return violations


def worker_tagging_grants(templates: Path = POLICY_TEMPLATES) -> dict[str, list]:
    """For each statement of worker.json.tpl granting s3:PutObjectTagging: its rendered resources
    and the tag keys its condition lets the worker set (None: any key)."""
    doc = render_template(templates / "worker.json.tpl")
    out: dict[str, list] = {}
    for i, st in enumerate(_as_list(doc.get("Statement"))):
        if "s3:PutObjectTagging" not in _as_list(st.get("Action")):
            continue
        keys = st.get("Condition", {}).get("ForAllValues:StringEquals", {}).get("s3:RequestObjectTagKeys")
        out[st.get("Sid", f"#{i}")] = [_as_list(st.get("Resource")), None if keys is None else _as_list(keys)]
    return out


def retention_tag_violations(tree: Tree, templates: Path = POLICY_TEMPLATES) -> list[str]:
    """The lifecycle rules, the worker's PutObjectTagging grant (on originals/* only, limited to
    setting the one tag) and the contract name the same tag key."""
    violations = []
    local_key = tree.locals("modules/storage").get("originals_retention_tag")
    if local_key != RETENTION_TAG:
        violations.append(f"modules/storage local.originals_retention_tag is {local_key!r}, the contract says {RETENTION_TAG!r}")
    rule_keys = {k for r in lifecycle_rules(tree) if r.prefix == RETENTION_PREFIX for k in r.tags}
    if rule_keys != {RETENTION_TAG}:
        violations.append(f"the originals/ lifecycle rules filter on tag keys {sorted(map(str, rule_keys))}, want [{RETENTION_TAG!r}]")
    grants = worker_tagging_grants(templates)
    if not grants:
        violations.append("worker.json.tpl grants no s3:PutObjectTagging")
    for sid, (resources, keys) in grants.items():
        if resources != [f"{SAMPLE_ARNS['bucket_arn']}/{RETENTION_PREFIX}*"]:
            violations.append(f"worker.json.tpl statement {sid}: s3:PutObjectTagging on {resources}, want only originals/*")
        if keys != [RETENTION_TAG]:
            violations.append(f"worker.json.tpl statement {sid}: may set tag keys {keys}, want [{RETENTION_TAG!r}]")
    return violations


# --- CDN delivery (issue #21) --------------------------------------------------------------------

# The object-key prefixes the CDN serves, as the binary names them (pipeline/src/delivery.rs):
# variants/ for tenants in public mode, private/ for signed mode. The delivery URL path is the key.
DELIVERY_PREFIXES = ("variants/", "private/")
CDN_PRINCIPAL = "cloudfront.amazonaws.com"
DISTRIBUTION_ARN = "${module.delivery.distribution_arn}"


def policy_document(tree: Tree, resource_type: str, name: str, module: str) -> Block:
    """The aws_iam_policy_document that a bucket or key policy resource renders."""
    policy = tree.resource(resource_type, name, module)
    doc_name = re.search(r"data\.aws_iam_policy_document\.(\w+)\.json", attr(policy.body, "policy")).group(1)
    (doc,) = [d for d in tree.data("aws_iam_policy_document", module) if d.name == doc_name]
    return doc


def _principals(statement: dict) -> set[str]:
    return {i for p in blocks(statement, "principals") for i in _as_list(attr(p, "identifiers"))}


def _conditions(statement: dict) -> list[tuple]:
    return sorted((attr(c, "test"), attr(c, "variable"), tuple(_as_list(attr(c, "values")))) for c in blocks(statement, "condition"))


def cdn_read_violations(tree: Tree) -> list[str]:
    """The media bucket policy's one Allow: cloudfront.amazonaws.com may s3:GetObject exactly the
    delivery prefixes, for the stack's distribution only (AWS:SourceArn); the key policy lets the
    same principal, under the same condition, kms:Decrypt and nothing more. modules/storage calls
    modules/delivery, whose distribution_arn output is the distribution's."""
    violations = []
    bucket = "${aws_s3_bucket.media.arn}"
    only_ours = [("StringEquals", "AWS:SourceArn", (DISTRIBUTION_ARN,))]
    media = policy_document(tree, "aws_s3_bucket_policy", "media", "modules/storage")
    allows = [st for st in blocks(media.body, "statement") if attr(st, "effect", "Allow") == "Allow"]
    if len(allows) != 1:
        violations.append(f"media bucket policy: {len(allows)} Allow statements, want the CDN's alone")
    for st in allows:
        sid = attr(st, "sid", "?")
        if _principals(st) != {CDN_PRINCIPAL}:
            violations.append(f"media bucket policy {sid}: allows {sorted(_principals(st))}")
        if _as_list(attr(st, "actions")) != ["s3:GetObject"]:
            violations.append(f"media bucket policy {sid}: actions {_as_list(attr(st, 'actions'))}, want s3:GetObject only")
        wanted = {f"{bucket}/{prefix}*" for prefix in DELIVERY_PREFIXES}
        if set(_as_list(attr(st, "resources"))) != wanted:
            violations.append(f"media bucket policy {sid}: resources {_as_list(attr(st, 'resources'))}, want {sorted(wanted)}")
        if _conditions(st) != only_ours:
            violations.append(f"media bucket policy {sid}: conditions {_conditions(st)}, want {only_ours}")
    key = policy_document(tree, "aws_kms_key_policy", "this", "modules/storage")
    cdn_key = [st for st in blocks(key.body, "statement") if CDN_PRINCIPAL in _principals(st)]
    if len(cdn_key) != 1:
        violations.append(f"key policy: {len(cdn_key)} statements for {CDN_PRINCIPAL}, want 1")
    for st in cdn_key:
        sid = attr(st, "sid", "?")
        if attr(st, "effect", "Allow") != "Allow" or _as_list(attr(st, "actions")) != ["kms:Decrypt"]:
            violations.append(f"key policy {sid}: {attr(st, 'effect', 'Allow')} {_as_list(attr(st, 'actions'))}, want Allow kms:Decrypt only")
        if _principals(st) != {CDN_PRINCIPAL}:
            violations.append(f"key policy {sid}: shared with {sorted(_principals(st) - {CDN_PRINCIPAL})}")
        if _conditions(st) != only_ours:
            violations.append(f"key policy {sid}: conditions {_conditions(st)}, want {only_ours}")
    call = tree.module_calls("modules/storage").get("delivery")
    if call is None or attr(call, "source") != "../delivery":
        violations.append("modules/storage does not call ../delivery as module.delivery")
    exported = attr(tree.outputs("modules/delivery")["distribution_arn"], "value")
    if exported != "${aws_cloudfront_distribution.this.arn}":
        violations.append(f"modules/delivery output distribution_arn is {exported!r}")
    return violations


def cdn_behaviours(tree: Tree) -> dict[str, dict]:
    """The distribution's cache behaviours by path pattern ("default" for the default one)."""
    distribution = tree.resource("aws_cloudfront_distribution", "this", "modules/delivery")
    out = {attr(b, "path_pattern"): b for b in blocks(distribution.body, "ordered_cache_behavior")}
    (default,) = blocks(distribution.body, "default_cache_behavior")
    out["default"] = default
    return out


def _function_associations(behaviour: dict) -> list[tuple[str, str, str]]:
    """(event type, function ARN expression, for_each or "") of a behaviour's function
    associations, static ones and those of a dynamic block."""
    found = [(attr(f, "event_type"), attr(f, "function_arn"), "") for f in blocks(behaviour, "function_association")]
    for dyn in blocks(behaviour, "dynamic"):
        spec = dyn.get("function_association")
        for gen in spec if isinstance(spec, list) else [spec]:
            if isinstance(gen, dict):
                for content in blocks(gen, "content"):
                    found.append((attr(content, "event_type"), attr(content, "function_arn"), attr(gen, "for_each")))
    return found


NOT_FOUND_ARN = "${aws_cloudfront_function.not_found.arn}"


def expression(value: Any) -> str:
    """An expression as one comparable string: python-hcl2 quotes references nested in a list as
    '${...}', and keeps the source's spacing; both go. (It also writes null as None.)"""
    text = str(value)
    while True:
        unquoted = re.sub(r"'\$\{([^{}']*)\}'", r"\1", text)
        if unquoted == text:
            return re.sub(r"\s", "", text)
        text = unquoted


def private_delivery_violations(tree: Tree) -> list[str]:
    """Nothing under /private/* is served unsigned: with keys it trusts the key group (CloudFront
    answers 403 to a missing or bad signature), without keys the 404 function answers instead,
    never neither. /variants/* trusts no signer (its URLs carry none), and every other path gets
    the 404 function."""
    violations = []
    behaviours = cdn_behaviours(tree)
    if set(behaviours) != {"/variants/*", "/private/*", "default"}:
        violations.append(f"cache behaviours {sorted(behaviours)}, want /variants/*, /private/* and the default")
        return violations
    private, variants, default = behaviours["/private/*"], behaviours["/variants/*"], behaviours["default"]
    local = tree.locals("modules/delivery")
    if expression(local.get("signing")) != "${length(var.public_keys)>0}":
        violations.append(f"local.signing is {local.get('signing')!r}, want length(var.public_keys) > 0")
    if expression(attr(private, "trusted_key_groups")) != "${local.signing?[aws_cloudfront_key_group.signers[0].id]:[]}":
        violations.append(f"/private/* trusted_key_groups = {attr(private, 'trusted_key_groups')!r}, want the key group whenever local.signing")
    guards = [(e, expression(f), expression(fe)) for e, f, fe in _function_associations(private)]
    if guards != [("viewer-request", "${function_association.value}", "${local.signing?[]:[aws_cloudfront_function.not_found.arn]}")]:
        violations.append(f"/private/* function associations {guards}, want the 404 function exactly when not local.signing")
    if attr(private, "trusted_signers") is not None:
        violations.append("/private/* trusts signers (legacy key pairs) beside the key group")
    for name, behaviour in (("/variants/*", variants), ("default", default)):
        for key in ("trusted_key_groups", "trusted_signers"):
            if attr(behaviour, key) not in (None, []):
                violations.append(f"{name}: {key} = {attr(behaviour, key)!r}: its URLs carry no signature")
    if ("viewer-request", NOT_FOUND_ARN, "") not in _function_associations(default):
        violations.append("the default behaviour does not answer with the 404 function")
    group = tree.resource("aws_cloudfront_key_group", "signers", "modules/delivery")
    if expression(attr(group.body, "count")) != "${local.signing?1:0}":
        violations.append(f"key group count {attr(group.body, 'count')!r}, want local.signing ? 1 : 0")
    return violations


def cdn_cache_key_violations(tree: Tree) -> list[str]:
    """Every behaviour keys its cache on the path alone: a cache policy (no legacy
    forwarded_values) with no query string, cookie or header in the key."""
    violations = []
    policies = {p.name: p for p in tree.resources("aws_cloudfront_cache_policy", "modules/delivery")}
    for name, behaviour in cdn_behaviours(tree).items():
        if blocks(behaviour, "forwarded_values"):
            violations.append(f"{name}: forwarded_values instead of a cache policy")
        ref = re.fullmatch(r"\$\{aws_cloudfront_cache_policy\.(\w+)\.id\}", str(attr(behaviour, "cache_policy_id")))
        if not ref or ref.group(1) not in policies:
            violations.append(f"{name}: cache_policy_id {attr(behaviour, 'cache_policy_id')!r} is not one of ours")
            continue
        (params,) = blocks(policies[ref.group(1)].body, "parameters_in_cache_key_and_forwarded_to_origin")
        for block, key in (("query_strings_config", "query_string_behavior"), ("cookies_config", "cookie_behavior"),
                           ("headers_config", "header_behavior")):
            configured = [attr(b, key) for b in blocks(params, block)]
            if configured != ["none"]:
                violations.append(f"{name}: cache policy {ref.group(1)} has {key} {configured}, want none")
    return violations
