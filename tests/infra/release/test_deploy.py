"""The deploy job of release.yml: its shape, its scripts, and the terraform it relies on.

The scripts run as the job runs them: .github/scripts/tfvars.sh with the environment the
workflow step maps from GitHub variables, .github/scripts/deploy.sh with `terraform output -json`
shaped outputs and a stand-in `aws` on PATH that records its arguments and answers like the AWS
CLI. Names (outputs, variables, the migrate task definition's address) are read from terraform/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tftext import REPO, attribute, blocks, read, unquote

RELEASE = REPO / ".github" / "workflows" / "release.yml"
TFVARS = REPO / ".github" / "scripts" / "tfvars.sh"
DEPLOY = REPO / ".github" / "scripts" / "deploy.sh"

CLUSTER = "image-service-production"
MIGRATE = "arn:aws:ecs:eu-west-1:123456789012:task-definition/image-service-production-migrate:8"
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/image-service-production/0123456789abcdef"
WANTED = {
    "api": "arn:aws:ecs:eu-west-1:123456789012:task-definition/image-service-production-api:12",
    "worker": "arn:aws:ecs:eu-west-1:123456789012:task-definition/image-service-production-worker:9",
}
NETWORK = {"subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-ops"], "assignPublicIp": "DISABLED"}

# Answers like the AWS CLI's to a stand-in `aws`: argv prefix -> (stdout, exit status).
STAND_IN = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["AWS_CALLS"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
answers = json.load(open(os.environ["AWS_ANSWERS"]))
for prefix, (stdout, status) in answers.items():
    if sys.argv[1:len(prefix.split()) + 1] == prefix.split():
        print(stdout)
        sys.exit(status)
sys.exit(f"stand-in aws: no answer for {sys.argv[1:]}")
"""


def deploy_job() -> dict:
    return yaml.safe_load(RELEASE.read_text(encoding="utf-8"))["jobs"]["deploy"]


def step_running(job: dict, needle: str) -> tuple[int, dict]:
    (found,) = [(i, s) for i, s in enumerate(job["steps"]) if needle in s.get("run", "")]
    return found


def production_variables() -> dict[str, bool]:
    """Variable name -> has a default, for terraform/envs/production."""
    return {
        name: attribute(body, "default") is not None
        for (name,), body in blocks(read("envs", "production"), "variable").items()
    }


def production_outputs() -> set[str]:
    return {name for (name,) in blocks(read("envs", "production"), "output")}


# --- the job -----------------------------------------------------------------------------------


def test_deploy_runs_behind_the_production_environment_with_oidc():
    job = deploy_job()

    assert job["environment"] == "production"
    assert job["permissions"]["id-token"] == "write"
    assert "publish" in job["needs"]


def test_init_takes_the_missing_backend_settings_from_repository_variables():
    _, init = step_running(deploy_job(), "terraform -chdir=\"$TF_DIR\" init")
    given = dict(re.findall(r'-backend-config="(\w+)=\$(\w+)"', init["run"]))
    (backend,) = blocks(read("envs", "production"), "backend", "s3").values()

    assert {"bucket", "region", "key"} <= set(given) | {k for k in ("bucket", "region", "key") if attribute(backend, k)}
    for setting, variable in given.items():
        assert "vars." in init["env"][variable], f"{setting} comes from {init['env'][variable]}"


def test_plans_are_saved_and_applied_as_saved_migrate_first_then_verified():
    job = deploy_job()
    runs = [s.get("run", "") for s in job["steps"]]
    saved = [(i, out) for i, run in enumerate(runs) for out in re.findall(r'plan [^\n]*?(?:\\\n[^\n]*)*?-out="([^"]+)"', run)]
    applied = [(i, plan) for i, run in enumerate(runs) for plan in re.findall(r'apply -input=false "([^"]+)"', run)]
    migrate, _ = step_running(job, "deploy.sh migrate")
    verify, _ = step_running(job, "deploy.sh verify")

    assert [plan for _, plan in saved] == [plan for _, plan in applied], "every saved plan is applied, as saved"
    assert "-auto-approve" not in "".join(runs)
    (migrate_plan, first), (release_plan, second) = saved
    assert "-target='module.stack.module.compute.aws_ecs_task_definition.ops[\"migrate\"]'" in runs[migrate_plan]
    assert "-target" not in runs[release_plan]
    assert migrate_plan <= applied[0][0] < migrate < release_plan <= applied[1][0] < verify


def test_the_migrate_target_is_the_task_definition_terraform_defines():
    (stack,) = blocks(read("envs", "production"), "module", "stack").values()
    (compute,) = blocks(read("modules", "stack"), "module", "compute").values()
    compute_tf = read("modules", "compute", "ecs")
    (ops,) = blocks(compute_tf, "resource", "aws_ecs_task_definition", "ops").values()

    assert unquote(attribute(stack, "source")) == "../../modules/stack"
    assert unquote(attribute(compute, "source")) == "../compute/ecs"
    assert attribute(ops, "for_each") == "local.ops_containers"
    assert re.search(r"ops_containers\s*=\s*\{\s*migrate\s*=\s*\{\s*command\s*=\s*\[\"migrate\"\]", compute_tf)


def test_deploy_script_reads_only_outputs_production_declares():
    script = DEPLOY.read_text(encoding="utf-8")
    used = set(re.findall(r'output "\$outputs" (\w+)', script)) | set(re.findall(r"\.(\w+)\.value", script))

    assert used, "no outputs found in deploy.sh"
    assert used <= production_outputs()


def test_every_ecs_service_rolls_back_a_failed_deployment():
    services = blocks(read("modules", "compute", "ecs"), "resource", "aws_ecs_service")
    assert set(services) == {("aws_ecs_service", name) for name in WANTED}
    for name, body in services.items():
        (breaker,) = blocks(body, "deployment_circuit_breaker").values()
        assert attribute(breaker, "enable") == "true" and attribute(breaker, "rollback") == "true", name


# --- tfvars.sh ---------------------------------------------------------------------------------

SAMPLE_INPUTS = {
    "IMAGE_TAG": "1.4.2",
    "REGION": "eu-west-1",
    "CERTIFICATE_ARN": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
    "PUBLIC_BASE_URL": "https://images.example.com",
    "OPS_EMAIL_ADDRESSES": '["oncall@example.com"]',
    "EVENT_EMAIL_ADDRESSES": "",
    "SLACK_TEAM_ID": "T0123",
    "SLACK_CHANNEL_ID": "C0123",
    "UPLOAD_CORS_ALLOWED_ORIGINS": '["https://app.example.com"]',
    "ORIGINALS_RETENTION_DAYS": "90",
    "ORIGINALS_RETENTION_CHOICES": "[30, 90, 365]",
    "STALE_VARIANTS_GRACE_HOURS": "",
    # A P-256 public key as `openssl pkey -pubout` prints it, in a JSON object (docs/deploy.md).
    "DELIVERY_PUBLIC_KEYS": json.dumps({"k2026a": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc84j/cEZCseKAhIHnytawVnmG8yV\n5sItRAu0VjGL8mUI6Xoa0d6XSvuWcyCr6XrzCg0sNk3xlOM2UMBVnDjmcg==\n-----END PUBLIC KEY-----\n"}),
    "DELIVERY_SIGNING_KEY_NAME": "k2026a",
    "DELIVERY_DOMAIN_NAME": "cdn.example.com",
    "DELIVERY_CERTIFICATE_ARN": "arn:aws:acm:us-east-1:123456789012:certificate/cdn",
    "TRACES_ENABLED": "true",
    "TRACE_SAMPLING_RATIO": "0.1",
}
# The inputs without which tfvars.sh refuses to write anything.
REQUIRED_INPUTS = {"IMAGE_TAG", "REGION", "CERTIFICATE_ARN"}


def tfvars(**overrides):
    env = {"PATH": os.environ["PATH"], **SAMPLE_INPUTS, **overrides}
    return subprocess.run([str(TFVARS)], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_tfvars_step_maps_every_input_the_script_reads_from_github_settings():
    _, step = step_running(deploy_job(), "tfvars.sh")
    read_by_script = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", TFVARS.read_text(encoding="utf-8")))

    assert read_by_script <= set(step["env"]) | {"ARGS"}
    assert set(step["env"]) == set(SAMPLE_INPUTS)
    for name, value in step["env"].items():
        assert re.fullmatch(r"\$\{\{ (vars|needs)\.[\w.]+ \}\}", value), f"{name}: {value}"


def test_tfvars_sets_every_production_variable_and_the_required_ones_from_inputs():
    result = tfvars()

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert set(written) == set(production_variables())
    for name, has_default in production_variables().items():
        if not has_default:
            assert written[name], f"{name} has no default and was written empty"
    assert written["region"] == "eu-west-1" and written["image_tag"] == "1.4.2"
    assert written["ops_email_addresses"] == ["oncall@example.com"] and written["event_email_addresses"] == []
    assert written["delivery_public_keys"] == json.loads(SAMPLE_INPUTS["DELIVERY_PUBLIC_KEYS"])
    assert written["delivery_signing_key_name"] == "k2026a"


def test_tfvars_writes_the_env_roots_default_for_every_setting_left_unset():
    """An unset GitHub variable reads as "": each variable then gets the default variables.tf
    declares, written out by the script (a plan given the file must not differ from one without)."""
    unset = {name: "" for name in SAMPLE_INPUTS if name not in REQUIRED_INPUTS}

    result = tfvars(**unset)

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    for (name,), body in blocks(read("envs", "production"), "variable").items():
        default = attribute(body, "default")
        if default is None or name == "region":  # region is the required REGION
            continue
        assert written[name] == json.loads(default), f"{name}: wrote {written[name]!r}, variables.tf says {default}"


def test_tfvars_passes_the_trace_settings_as_terraform_types():
    result = tfvars(TRACES_ENABLED="false", TRACE_SAMPLING_RATIO="0.25")

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["traces_enabled"] is False
    assert written["trace_sampling_ratio"] == 0.25


def test_tfvars_without_cdn_settings_writes_no_keys_and_no_domain():
    unset = {name: "" for name in SAMPLE_INPUTS if name.startswith("DELIVERY_")}

    result = tfvars(**unset)

    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["delivery_public_keys"] == {}
    assert written["delivery_signing_key_name"] == written["delivery_domain_name"] == written["delivery_certificate_arn"] == ""


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"CERTIFICATE_ARN": ""}, "TF_CERTIFICATE_ARN"),
        ({"CERTIFICATE_ARN": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}, "in eu-west-1"),
        ({"OPS_EMAIL_ADDRESSES": "oncall@example.com"}, "TF_OPS_EMAIL_ADDRESSES must be a JSON array"),
        ({"UPLOAD_CORS_ALLOWED_ORIGINS": "[1]"}, "TF_UPLOAD_CORS_ALLOWED_ORIGINS must be a JSON array"),
        ({"DELIVERY_PUBLIC_KEYS": '["k2026a"]'}, "TF_DELIVERY_PUBLIC_KEYS must be a JSON object"),
        ({"DELIVERY_SIGNING_KEY_NAME": "k2025z"}, "TF_DELIVERY_SIGNING_KEY_NAME must be one of the names"),
        ({"DELIVERY_PUBLIC_KEYS": "", "DELIVERY_SIGNING_KEY_NAME": "k2026a"}, "TF_DELIVERY_SIGNING_KEY_NAME must be one of the names"),
        ({"DELIVERY_SIGNING_KEY_NAME": ""}, "TF_DELIVERY_SIGNING_KEY_NAME must be one of the names"),
        ({"DELIVERY_CERTIFICATE_ARN": ""}, "TF_DELIVERY_DOMAIN_NAME and TF_DELIVERY_CERTIFICATE_ARN together"),
        ({"DELIVERY_CERTIFICATE_ARN": "arn:aws:acm:eu-west-1:123456789012:certificate/cdn"}, "in us-east-1"),
        ({"TRACES_ENABLED": "yes"}, "TF_TRACES_ENABLED must be true or false"),
        ({"TRACES_ENABLED": "True"}, "TF_TRACES_ENABLED must be true or false"),
        ({"TRACE_SAMPLING_RATIO": "5%"}, "TF_TRACE_SAMPLING_RATIO must be a number"),
        ({"TRACE_SAMPLING_RATIO": '"0.05"'}, "TF_TRACE_SAMPLING_RATIO must be a number"),
    ],
)
def test_tfvars_refuses_missing_or_malformed_inputs(overrides, reason):
    result = tfvars(**overrides)

    assert result.returncode != 0
    assert reason in result.stderr


# --- deploy.sh ---------------------------------------------------------------------------------


@pytest.fixture
def aws(tmp_path):
    """Run deploy.sh with a stand-in aws; returns (run, calls) helpers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(STAND_IN)
    (bin_dir / "aws").chmod(0o755)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({
        "ecs_cluster_name": {"value": CLUSTER},
        "migrate_task_definition_arn": {"value": MIGRATE},
        "ops_task_network": {"value": NETWORK},
        "service_task_definitions": {"value": WANTED},
        "ecr_repository_url": {"value": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-service-production"},
    }))
    calls = tmp_path / "calls.jsonl"

    def run(answers: dict, *args: str):
        (tmp_path / "answers.json").write_text(json.dumps(answers))
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "AWS_CALLS": str(calls),
            "AWS_ANSWERS": str(tmp_path / "answers.json"),
        }
        return subprocess.run([str(DEPLOY), args[0], str(outputs), *args[1:]], env=env,
                              capture_output=True, text=True, timeout=30, check=False)

    def logged():
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return run, logged


def migrate_answers(exit_code=0, started=True):
    container = {"name": "migrate"} | ({} if exit_code is None else {"exitCode": exit_code})
    return {
        "ecs run-task": (json.dumps({"tasks": [{"taskArn": TASK}] if started else [],
                                     "failures": [] if started else [{"reason": "RESOURCE:ENI"}]}), 0),
        "ecs wait tasks-stopped": ("", 0),
        "ecs describe-tasks": (json.dumps({"tasks": [{"containers": [container], "stoppedReason": "Essential container in task exited"}]}), 0),
    }


def test_migrate_runs_the_migrate_task_in_the_ops_network_and_waits_for_it(aws):
    run, logged = aws

    result = run(migrate_answers(exit_code=0), "migrate")

    assert result.returncode == 0, result.stdout + result.stderr
    started, waited, described = logged()
    assert started[:2] == ["ecs", "run-task"]
    assert started[started.index("--cluster") + 1] == CLUSTER
    assert started[started.index("--task-definition") + 1] == MIGRATE
    assert json.loads(started[started.index("--network-configuration") + 1]) == {"awsvpcConfiguration": NETWORK}
    assert waited == ["ecs", "wait", "tasks-stopped", "--cluster", CLUSTER, "--tasks", TASK]
    assert described[:2] == ["ecs", "describe-tasks"]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (migrate_answers(exit_code=3), "migrate exited with code 3"),
        (migrate_answers(exit_code=None), "migrate exited with code none"),
        (migrate_answers(started=False), "did not start"),
    ],
)
def test_migrate_fails_unless_the_container_exited_zero(aws, answers, reason):
    run, _ = aws

    result = run(answers, "migrate")

    assert result.returncode != 0
    assert reason in result.stderr


def services_answer(api_definition):
    deployments = {"api": api_definition, "worker": WANTED["worker"]}
    return {
        "ecs wait services-stable": ("", 0),
        "ecs describe-services": (json.dumps({"services": [
            {"serviceName": name, "deployments": [{"status": "PRIMARY", "taskDefinition": arn}]}
            for name, arn in deployments.items()
        ]}), 0),
    }


def test_verify_waits_for_every_service_and_accepts_the_applied_definitions(aws):
    run, logged = aws

    result = run(services_answer(WANTED["api"]), "verify")

    assert result.returncode == 0, result.stdout + result.stderr
    waited = logged()[0]
    assert waited[:3] == ["ecs", "wait", "services-stable"]
    assert waited[waited.index("--cluster") + 1] == CLUSTER
    assert set(waited[waited.index("--services") + 1:]) == set(WANTED)


def test_verify_fails_when_the_circuit_breaker_rolled_a_service_back(aws):
    run, _ = aws
    previous = WANTED["api"].replace(":12", ":11")

    result = run(services_answer(previous), "verify")

    assert result.returncode != 0
    assert f"api runs {previous}, not {WANTED['api']}" in result.stderr


def test_image_check_fails_when_the_release_is_not_in_the_deployed_registry(aws):
    run, logged = aws

    result = run({"ecr describe-images": ("ImageNotFoundException", 254)}, "image", "1.4.2")

    assert result.returncode != 0
    assert "image-service-production:1.4.2 is not in the deployed registry" in result.stderr
    assert logged()[0][-2:] == ["--image-ids", "imageTag=1.4.2"]
