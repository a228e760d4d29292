"""One CPU architecture throughout: the image the workflows build is the one the tasks can run.

Fargate starts a task only on its task definition's `runtime_platform.cpu_architecture`; an image
without a manifest for it fails every task with "exec format error" (or CannotPullContainerError)
after the release already went out. Both sides are read from the shipped files: the `platforms`
of every docker/build-push-action step, and the architecture terraform gives each environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tftext import REPO, attribute, blocks, read, unquote

WORKFLOWS = REPO / ".github" / "workflows"
# runtime_platform.cpu_architecture -> the OCI platform an image needs for it.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#runtime-platform
PLATFORM = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


def image_builds(workflow: Path) -> list[tuple[str, set[str]]]:
    """(job, platforms) for every docker/build-push-action step; platforms empty when unset."""
    jobs = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]
    return [
        (name, {p.strip() for p in str(step.get("with", {}).get("platforms", "")).replace("\n", ",").split(",") if p.strip()})
        for name, job in jobs.items()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]


def task_architecture(env: str) -> str:
    """cpu_architecture of the env's tasks: its own setting, else the stack module's default."""
    (stack,) = blocks(read("envs", env), "module", "stack").values()
    chosen = attribute(stack, "cpu_architecture")
    if chosen is None:
        (variable,) = blocks(read("modules", "stack"), "variable", "cpu_architecture").values()
        chosen = attribute(variable, "default")
    return unquote(chosen)


def test_every_task_definition_takes_the_architecture_the_stack_decides():
    (compute,) = blocks(read("modules", "stack"), "module", "compute").values()
    assert attribute(compute, "cpu_architecture") == "var.cpu_architecture"
    definitions = blocks(read("modules", "compute", "ecs"), "resource", "aws_ecs_task_definition")
    assert definitions
    for name, body in definitions.items():
        (platform,) = blocks(body, "runtime_platform").values()
        assert attribute(platform, "cpu_architecture") == "var.cpu_architecture", name


def test_every_image_build_names_its_platforms():
    builds = [(w.name, job, platforms) for w in sorted(WORKFLOWS.glob("*.yml")) for job, platforms in image_builds(w)]
    assert builds
    for workflow, job, platforms in builds:
        # Unset means the runner's own architecture: an accident, not a decision.
        assert platforms, f"{workflow} job {job} builds without `platforms`"


@pytest.mark.parametrize("env", ["production", "staging"])
def test_release_image_has_a_manifest_for_the_tasks_architecture(env):
    (release_build,) = image_builds(WORKFLOWS / "release.yml")
    architecture = task_architecture(env)

    assert architecture in PLATFORM, f"unknown cpu_architecture {architecture!r}"
    assert PLATFORM[architecture] in release_build[1], (
        f"terraform runs {env} tasks on {architecture}, release.yml builds {sorted(release_build[1])}"
    )


def test_pull_request_and_build_images_are_the_platforms_released():
    # The Trivy scan on pull requests must look at the bytes that ship.
    (_, released) = image_builds(WORKFLOWS / "release.yml")[0]
    for workflow in ("build.yml", "pr.yml"):
        for job, platforms in image_builds(WORKFLOWS / workflow):
            assert platforms == released, f"{workflow} job {job} builds {sorted(platforms)}, release {sorted(released)}"
