"""Traces on AWS (docs/operations.md, "Traces on AWS"): the services post OTLP/HTTP to the ADOT
sidecar of their own task, whose traces pipeline sends the spans to X-Ray.

modules/compute/ecs is evaluated with tools/lib/harness/tfeval.py, so each test reads what
`terraform plan` would hand ECS: the container definitions (the service's environment, the
collector's AOT_CONFIG_CONTENT parsed as the collector parses it) and the role policies, with
traces_enabled and trace_sampling_ratio at their defaults or set as a caller would set them.
"""

from __future__ import annotations

import json
import re
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from tfhcl import REPO, SAMPLE_ARNS, TERRAFORM, attr

sys.path.insert(0, str(REPO / "tools" / "lib"))

from harness import tfeval  # noqa: E402

COMPUTE = TERRAFORM / "modules" / "compute" / "ecs"
OPERATIONS_DOC = REPO / "docs" / "operations.md"
ENVS = ("envs/staging", "envs/production")
ROLES = ("api", "worker")
NAME = "image-service-test"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
SIDECAR = "adot-collector"
# The X-Ray calls each collector component makes, by what turns them on (the component's README):
# the awsxray exporter sends segments, and its own health counts only with `telemetry` enabled
# (off by default); only an awsxray receiver proxies X-Ray SDKs' central-sampling reads.
# https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/awsxrayexporter
# https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/receiver/awsxrayreceiver
XRAY_EXPORTER_CALLS = {"xray:PutTraceSegments"}
XRAY_TELEMETRY_CALLS = {"xray:PutTelemetryRecords"}
XRAY_SAMPLING_CALLS = {"xray:GetSamplingRules", "xray:GetSamplingTargets"}

VARIABLES = {
    "name": NAME,
    "app_env": "staging",
    "vpc_id": "vpc-0123456789abcdef0",
    "public_subnet_ids": ["subnet-public-a", "subnet-public-b"],
    "private_subnet_ids": ["subnet-private-a", "subnet-private-b"],
    "security_group_ids": {"alb": "sg-alb", "api": "sg-api", "worker": "sg-worker", "ops": "sg-ops"},
    "kms_key_arn": SAMPLE_ARNS["kms_key_arn"],
    "certificate_arn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/test",
    "access_logs_bucket": f"{NAME}-logs",
    "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{NAME}:1.0.0",
    "cpu_architecture": "X86_64",
    "task_role_arns": {role: f"arn:aws:iam::{ACCOUNT}:role/{NAME}-{role}" for role in ("api", "worker", "replay")},
    "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{NAME}-task-execution",
    "log_group_names": {role: f"/ecs/{NAME}/{role}" for role in ("api", "worker", "ops")},
    "config": {
        "s3_bucket": f"{NAME}-media",
        "s3_kms_key_id": SAMPLE_ARNS["kms_key_arn"],
        "sqs_queue_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAME}-jobs",
        "sqs_dlq_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAME}-jobs-dlq",
        "sqs_bulk_queue_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAME}-jobs-bulk",
        "sqs_bulk_dlq_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{NAME}-jobs-bulk-dlq",
        "sns_topic_arn": SAMPLE_ARNS["topic_arn"],
        "sns_chat_topic_arn": SAMPLE_ARNS["chat_topic_arn"],
        "database_url": "postgres://app@db.internal:5432/images?sslmode=verify-full",
        "owner_database_url": "postgres://owner@db.internal:5432/images?sslmode=verify-full",
        "db_app_role": "image_app",
        "redis_url": "rediss://cache.internal:6379",
    },
    "db_secret_arn": SAMPLE_ARNS["db_secret_arn"],
    "db_app_secret_arn": SAMPLE_ARNS["db_app_secret_arn"],
    "admin_api_key_secret_arn": SAMPLE_ARNS["admin_api_key_secret_arn"],
    "delivery_signing_key_secret_arn": SAMPLE_ARNS["delivery_signing_key_secret_arn"],
    "delivery_base_url": "https://cdn.example.com",
    # Set, so that no container waits on the ALB's DNS name (known only after apply).
    "public_base_url": "https://images.example.com",
    "metrics_namespace": f"ImageService/{NAME}",
    "metrics_log_group": {
        "name": f"/ecs/{NAME}/metrics",
        "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/{NAME}/metrics",
    },
}
STAND_INS = {"data.aws_region.current.region": REGION}


def _regex(pattern: str, string: str) -> str:
    """Terraform's regex() for a pattern without capture groups (the whole match; no match is an
    error), the only form metrics_roles uses. tfeval has no regex() of its own yet."""
    compiled = re.compile(pattern)
    if compiled.groups:
        raise tfeval.EvalError(f"regex({pattern!r}): capture groups are not modelled here")
    found = compiled.search(string)
    if found is None:
        raise tfeval.EvalError(f"regex({pattern!r}, {string!r}): no match")
    return found.group(0)


@pytest.fixture(scope="module", autouse=True)
def terraform_regex():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(tfeval.FUNCTIONS, "regex", _regex)
        yield


def compute(**variables) -> tfeval.Module:
    return tfeval.Module(COMPUTE, dict(VARIABLES, **variables), "", STAND_INS)


@pytest.fixture(scope="module")
def module() -> tfeval.Module:
    return compute()


@pytest.fixture(scope="module")
def off() -> tfeval.Module:
    return compute(traces_enabled=False)


def containers(module: tfeval.Module, family: str) -> dict[str, dict]:
    """The containers of a task definition by name, as ECS gets them."""
    if family in ROLES:
        definition = module.resource("aws_ecs_task_definition", family)
    else:  # the one-off tasks, one for_each resource
        definition = module.resource("aws_ecs_task_definition", "ops")[family]
    rendered = json.loads(tfeval.known(definition.attr("container_definitions"), f"{definition.ref}.container_definitions"))
    return {c["name"]: c for c in rendered}


def environment(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def service_env(module: tfeval.Module, role: str) -> dict[str, str]:
    return environment(containers(module, role)[role])


def collector_config(module: tfeval.Module, role: str) -> dict:
    """The sidecar's configuration, parsed from AOT_CONFIG_CONTENT as the collector reads it."""
    return yaml.safe_load(environment(containers(module, role)[SIDECAR])["AOT_CONFIG_CONTENT"])


def receiver_address(config: dict) -> tuple[str, int]:
    endpoint = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    parts = urlsplit(f"//{endpoint}")
    return parts.hostname, parts.port


def statements(doc: tfeval.Instance) -> list[tfeval.Instance]:
    return doc.attr("statement")


# --- The collector ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_collector_takes_otlp_over_http_on_the_tasks_localhost_only(module, role):
    """The services post OTLP/HTTP (protobuf); the receiver listens on localhost, which the task's
    containers share (awsvpc), so nothing outside the task can send it spans."""
    config = collector_config(module, role)
    otlp = config["receivers"]["otlp"]
    assert set(otlp["protocols"]) == {"http"}, "OTLP/HTTP only: the binary does not speak gRPC"
    assert receiver_address(config) == ("localhost", module.local("otlp_http_port"))
    assert module.local("otlp_http_port") == 4318  # OTLP/HTTP's own port
    sidecar = containers(module, role)[SIDECAR]
    assert "portMappings" not in sidecar, "the receiver must not be mapped out of the task"


@pytest.mark.parametrize("role", ROLES)
def test_each_collector_sends_the_spans_it_receives_to_xray(module, role):
    config = collector_config(module, role)
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["awsxray"], traces
    assert set(traces["processors"]) <= set(config["processors"]), traces
    batches = [p for p in traces["processors"] if p.split("/")[0] == "batch"]
    assert batches, "spans go in batches"
    # Not the metrics' batch: a trace held back a minute is late, and more of it dies at a stop.
    for batch in batches:
        assert batch not in config["service"]["pipelines"]["metrics"]["processors"], batch
        assert int(config["processors"][batch]["timeout"].removesuffix("s")) <= 5, config["processors"][batch]
    # The region is the task's (AWS_REGION, which ECS sets), as for awsemf: neither names one.
    assert "region" not in (config["exporters"]["awsxray"] or {}) and "region" not in config["exporters"]["awsemf"]


@pytest.mark.parametrize("role", ROLES)
def test_the_metrics_side_of_the_collector_is_the_same_with_traces_on_or_off(module, off, role):
    on_config, off_config = collector_config(module, role), collector_config(off, role)
    traces = on_config["service"]["pipelines"]["traces"]
    added = {
        "receivers": set(traces["receivers"]),
        "exporters": set(traces["exporters"]),
        # resourcedetection is shared with the metrics pipeline; the traces' batch is their own.
        "processors": set(traces["processors"]) - set(on_config["service"]["pipelines"]["metrics"]["processors"]),
    }
    stripped = {kind: {k: v for k, v in on_config[kind].items() if k not in added[kind]} for kind in added}
    stripped["service"] = {"pipelines": {k: v for k, v in on_config["service"]["pipelines"].items() if k != "traces"}}
    assert stripped == off_config
    metrics = off_config["service"]["pipelines"]["metrics"]
    assert (metrics["receivers"], metrics["exporters"]) == (["prometheus"], ["awsemf"]), metrics


# --- The services ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_service_posts_its_spans_to_its_own_collectors_receiver(module, role):
    """OTEL_EXPORTER_OTLP_ENDPOINT is the base URL: the binary posts to <it>/v1/traces."""
    endpoint = urlsplit(service_env(module, role)["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http", "the receiver has no TLS: it is the task's localhost"
    assert endpoint.path in ("", "/"), endpoint
    assert (endpoint.hostname, endpoint.port) == receiver_address(collector_config(module, role))


@pytest.mark.parametrize("role", ROLES)
def test_each_service_names_itself_and_samples_at_the_variables_ratio(tree, module, role):
    env = service_env(module, role)
    assert env["OTEL_SERVICE_NAME"] == f"image-{role}"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    (default,) = tree.variables("modules/compute/ecs")["trace_sampling_ratio"]["default"]
    assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == default
    for ratio, written in ((0.25, "0.25"), (1, "1"), (0, "0")):
        assert service_env(compute(trace_sampling_ratio=ratio), role)["OTEL_TRACES_SAMPLER_ARG"] == written, ratio


@pytest.mark.parametrize(("ratio", "valid"), [(0, True), (0.05, True), (1, True), (-0.01, False), (1.5, False)])
def test_the_sampling_ratio_must_be_a_share(ratio, valid):
    evaluated = compute(trace_sampling_ratio=ratio)
    (validation,) = [b for b in evaluated.variable_blocks["trace_sampling_ratio"].blocks if b.kind == "validation"]
    assert tfeval.Scope(evaluated, {}).eval(validation.attributes["condition"]) is valid


@pytest.mark.parametrize("family", ["migrate", "replay"])
def test_the_one_off_tasks_trace_nothing(module, family):
    """They run no sidecar, so nothing would receive their spans."""
    (container,) = containers(module, family).values()
    assert not {k for k in environment(container) if k.startswith("OTEL_")}, family


# --- Stopping: the collector outlives the service ---------------------------------------------


@pytest.mark.parametrize("traces", [True, False], ids=["traces-on", "traces-off"])
@pytest.mark.parametrize("role", ROLES)
def test_each_service_starts_after_its_collector_and_so_stops_before_it(module, off, role, traces):
    """ECS reverses a START dependency at a stop: the service gets SIGTERM first, and the
    collector only once the service has exited, so the spans flushed at exit are still received.
    The sidecar runs for metrics whether traces are on or not, so the order holds in both."""
    by_name = containers(module if traces else off, role)
    service, sidecar = by_name[role], by_name[SIDECAR]
    assert service["dependsOn"] == [{"containerName": SIDECAR, "condition": "START"}]
    # Not HEALTHY: the collector is not essential, and no health of it may hold the service back
    # (it has no healthCheck to report one, either).
    assert sidecar["essential"] is False and "healthCheck" not in sidecar
    assert "dependsOn" not in sidecar, "a dependency back would be a cycle ECS refuses"


@pytest.mark.parametrize("role", ROLES)
def test_each_service_stop_timeout_leaves_time_to_flush_its_spans(module, role):
    """The binary's flush at exit is bounded by trace_flush_secs; stopTimeout is the time ECS gives
    before SIGKILL, and must hold the service's own shutdown work and then that flush."""
    service = containers(module, role)[role]
    flush = module.local("trace_flush_secs")
    if role == "api":
        # Requests still open at SIGTERM (the ALB drained the task before it), then the flush.
        assert service["stopTimeout"] == module.local("api_drain_secs") + flush
        assert module.local("api_drain_secs") > 0
    else:
        # The jobs in flight get the whole shutdown deadline; the margin after it is the flush's.
        deadline = int(service_env(module, role)["SHUTDOWN_DEADLINE_SECS"])
        assert service["stopTimeout"] - deadline >= flush
    assert service["stopTimeout"] <= 120, "ECS's largest stopTimeout"


@pytest.mark.parametrize(("margin", "valid"), [(5, True), (10, True), (4, False), (0, False)])
def test_a_worker_stop_margin_shorter_than_the_flush_fails_the_plan(margin, valid):
    evaluated = compute(stop_timeout_margin_secs=margin)
    definition = evaluated.resource("aws_ecs_task_definition", "worker")
    (lifecycle,) = [b for b in definition.block.blocks if b.kind == "lifecycle"]
    conditions = [b.attributes["condition"] for b in lifecycle.blocks if b.kind == "precondition"]
    scope = tfeval.Scope(evaluated, {})
    assert all(scope.eval(c) for c in conditions) is valid, margin


# --- IAM ---------------------------------------------------------------------------------------


def test_the_task_roles_may_send_traces_to_xray(module):
    """Granted like the EMF writes: one inline policy on each task role whose collector sends
    them. X-Ray's trace actions have no resource type, hence "*"."""
    policies = module.resource("aws_iam_role_policy", "traces")
    emf = module.resource("aws_iam_role_policy", "metrics")
    assert set(policies) == set(emf) == set(ROLES)
    for role, policy in policies.items():
        assert policy.attr("role") == emf[role].attr("role") == f"{NAME}-{role}", role
        rendered = policy.attr("policy")
        assert isinstance(rendered, tfeval.Unknown) and rendered.ref == "data.aws_iam_policy_document.traces.json", rendered
    doc = module.resource("aws_iam_policy_document", "traces", data=True)
    (statement,) = statements(doc)
    assert "effect" not in statement.block.attributes  # Allow, the default
    assert statement.attr("resources") == ["*"]


def xray_calls(config: dict) -> set[str]:
    """The X-Ray actions a collector with this configuration calls."""
    calls = set()
    for name, settings in config["exporters"].items():
        if name.split("/")[0] == "awsxray":
            calls |= XRAY_EXPORTER_CALLS
            if ((settings or {}).get("telemetry") or {}).get("enabled", False):
                calls |= XRAY_TELEMETRY_CALLS
    if any(name.split("/")[0] == "awsxray" for name in config["receivers"]):
        calls |= XRAY_SAMPLING_CALLS
    return calls


def test_the_xray_grant_is_exactly_what_the_collectors_call(module):
    """Read from the collector configuration the tasks ship: PutTraceSegments alone, since the
    exporter's telemetry is off and no awsxray receiver proxies sampling reads (the binary
    samples itself). A component that starts another call fails here until it is granted."""
    (statement,) = statements(module.resource("aws_iam_policy_document", "traces", data=True))
    granted = set(statement.attr("actions"))
    for role in ROLES:
        assert xray_calls(collector_config(module, role)) == granted, role
    assert granted == XRAY_EXPORTER_CALLS


def test_the_xray_calls_follow_the_collector_settings_that_start_them():
    """The rule above, on configurations that would need more: telemetry on, an awsxray receiver."""
    exporter_only = {"exporters": {"awsxray": None}, "receivers": {"otlp": {}}}
    with_telemetry = {"exporters": {"awsxray": {"telemetry": {"enabled": True}}}, "receivers": {}}
    with_receiver = {"exporters": {"awsxray": {}}, "receivers": {"awsxray": {}}}
    assert xray_calls(exporter_only) == XRAY_EXPORTER_CALLS
    assert xray_calls(with_telemetry) == XRAY_EXPORTER_CALLS | XRAY_TELEMETRY_CALLS
    assert xray_calls(with_receiver) == XRAY_EXPORTER_CALLS | XRAY_SAMPLING_CALLS
    assert xray_calls({"exporters": {"awsemf": {}}, "receivers": {}}) == set()


# --- Off ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_with_traces_off_no_variable_pipeline_or_grant_is_left(off, role):
    env = service_env(off, role)
    assert not {k for k in env if k.startswith("OTEL_")}, env
    config = collector_config(off, role)
    assert "otlp" not in config["receivers"] and "awsxray" not in config["exporters"]
    assert set(config["service"]["pipelines"]) == {"metrics"}
    assert not [p for p in config["processors"] if p not in config["service"]["pipelines"]["metrics"]["processors"]]
    assert off.resource("aws_iam_role_policy", "traces") == {}
    assert set(off.resource("aws_iam_role_policy", "metrics")) == set(ROLES), "metrics stay on"


# --- Plumbing and docs -----------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["traces_enabled", "trace_sampling_ratio"])
def test_both_settings_are_plumbed_from_the_env_roots_with_one_default(tree, variable):
    """Each env root declares them (so tfvars, and the release's GitHub variables through
    tfvars.sh, can set them) and passes them to the stack, which passes them to compute; every
    level has the same default, and the range check stays compute's alone."""
    compute_vars, stack_vars = tree.variables("modules/compute/ecs"), tree.variables("modules/stack")
    assert attr(tree.module_calls("modules/stack")["compute"], variable) == f"${{var.{variable}}}"
    assert stack_vars[variable]["default"] == compute_vars[variable]["default"]
    for env in ENVS:
        declared = tree.variables(env)[variable]
        assert declared["default"] == compute_vars[variable]["default"], env
        assert declared["type"] == compute_vars[variable]["type"], env
        assert declared.get("description"), env
        assert attr(tree.module_calls(env)["stack"], variable) == f"${{var.{variable}}}", env
    assert compute_vars["traces_enabled"]["default"] == [True]
    assert compute_vars["trace_sampling_ratio"].get("validation"), "0..1"


def deployed(env: str, **overrides) -> tfeval.Module:
    """modules/compute/ecs as the env root instantiates it with its example tfvars and overrides."""
    root = TERRAFORM / "envs" / env
    variables = dict(tfeval.tfvars(root / "terraform.tfvars.example"), **overrides)
    return tfeval.load(root, variables, {}).module("stack").module("compute")


@pytest.mark.parametrize("env", ["staging", "production"])
def test_what_an_env_root_is_given_reaches_the_services(tree, env):
    """Evaluated through envs/<env>, the stack and compute: the example tfvars give the default
    ratio, a ratio in tfvars becomes each service's OTEL_TRACES_SAMPLER_ARG, and
    traces_enabled = false leaves no OTEL_* variable and no X-Ray grant."""
    (default,) = tree.variables(f"envs/{env}")["trace_sampling_ratio"]["default"]
    example = deployed(env)
    sampled = deployed(env, trace_sampling_ratio=0.25)
    off_in_tfvars = deployed(env, traces_enabled=False)
    for role in ROLES:
        env_vars = example.local(f"{role}_environment")
        assert env_vars["OTEL_SERVICE_NAME"] == f"image-{role}"
        assert float(env_vars["OTEL_TRACES_SAMPLER_ARG"]) == default
        assert sampled.local(f"{role}_environment")["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        assert not {k for k in off_in_tfvars.local(f"{role}_environment") if k.startswith("OTEL_")}, role
    assert set(example.resource("aws_iam_role_policy", "traces")) == set(ROLES)
    assert off_in_tfvars.resource("aws_iam_role_policy", "traces") == {}


def test_the_docs_name_the_receiver_and_the_variables():
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    section = text[text.index("### Traces on AWS") :]
    section = section[: section.index("\n## ")]
    for needle in ("localhost:4318", "trace_sampling_ratio", "traces_enabled", "X-Ray"):
        assert needle in section, needle
