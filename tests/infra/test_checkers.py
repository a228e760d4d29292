"""Every checker in scripts/check-infra must fail on its known-bad sample.

A checker that passes everything (a wrong flag, a schema that isn't applied, a
tool that exits 0 when it cannot parse its input) would make the green summary
a lie. Each test runs the checker exactly as check-infra does
(`scripts/check-infra lint CHECKER FILE`) on a file from tests/infra/bad-samples/
and asserts a non-zero exit *and* the reason we planted, so a crash for some
other cause does not count as "caught". The positive controls run the same
checker on the real file and expect success, so the pair shows the checker
tells good from bad.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK_INFRA = ROOT / "scripts" / "check-infra"
BAD = ROOT / "tests" / "infra" / "bad-samples"


def lint(checker: str, *files: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_INFRA), "lint", checker, *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("checker", "sample", "expected"),
    [
        ("actionlint", "workflow-actionlint.yml", ["[job-needs]", "SC2086"]),
        ("workflow-schema", "workflow-schema.yml", ["'runs-on' is a required property"]),
        ("zizmor", "workflow-zizmor.yml", ["template-injection", "unpinned-uses"]),
        # zizmor must not shrug off a file it cannot understand.
        ("zizmor", "workflow-schema.yml", ["workflow-schema.yml"]),
        ("hadolint", "Dockerfile", ["DL3007", "DL3008", "DL3015", "DL3025"]),
        ("compose-v1", "docker-compose.yml", ["depnds_on"]),
        ("compose-schema", "docker-compose.yml", ["depnds_on"]),
        ("dependabot-schema", "dependabot.yml", ["'schedule' is a required property", "cargoo"]),
        ("shellcheck", "script.sh", ["SC2164", "SC2115"]),
        (
            "workflow-refs",
            "workflow-refs.yml",
            ["local action $/.github/actions/no-such-action has no action.yml", "actions/checkout@v4 is neither", "runs scripts/no-such-script"],
        ),
        (
            "workflow-settings",
            "workflow-settings.yml",
            [
                "secrets.NO_SUCH_TOKEN is not listed in docs/deploy.md",
                "vars.NO_SUCH_VARIABLE is not listed in docs/deploy.md",
                "vars.SLACK_WEBHOOK_URL is read as a variable, but docs/deploy.md lists it as a secret",
            ],
        ),
    ],
)
def test_checker_fails_on_its_bad_sample(checker, sample, expected):
    result = lint(checker, BAD / sample)

    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{checker} passed {sample}:\n{output}"
    for needle in expected:
        assert needle in output, f"{checker} failed on {sample}, but not for {needle!r}:\n{output}"


@pytest.mark.parametrize(
    ("checker", "real_file"),
    [
        ("actionlint", ".github/workflows/build.yml"),
        ("workflow-schema", ".github/workflows/release.yml"),
        ("zizmor", ".github/workflows/pr.yml"),
        ("hadolint", "Dockerfile"),
        ("compose-v1", "docker-compose.yml"),
        ("compose-schema", "docker-compose.yml"),
        ("dependabot-schema", ".github/dependabot.yml"),
        ("shellcheck", "scripts/check-infra"),
        ("workflow-refs", ".github/workflows/build.yml"),
        ("workflow-refs", ".github/workflows/pr.yml"),
        ("workflow-settings", ".github/workflows/build.yml"),
        ("workflow-settings", ".github/workflows/pr.yml"),
        ("workflow-settings", ".github/workflows/release.yml"),
    ],
)
def test_checker_passes_the_real_file(checker, real_file):
    result = lint(checker, ROOT / real_file)

    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_rejects_an_unknown_checker():
    result = lint("no-such-checker", BAD / "script.sh")

    assert result.returncode == 2
    assert "unknown checker" in result.stderr
