"""Tests for scripts/release-category: the pure rules first, then the CLI on a real git repo."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "release-category"


def _load_script():
    # The script has no .py suffix (it is run as a command), so load it by path.
    loader = importlib.machinery.SourceFileLoader("release_category", str(SCRIPT))
    spec = importlib.util.spec_from_loader("release_category", loader)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up by name while the class body runs.
    sys.modules[spec.name] = module
    loader.exec_module(module)
    return module


rc = _load_script()


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3, (), "")),
        ("v1.2.3", (1, 2, 3, (), "")),
        ("v0.0.1", (0, 0, 1, (), "")),
        ("2.0.0-rc.1", (2, 0, 0, ("rc", "1"), "")),
        ("v1.0.0-alpha-x.7+build.5", (1, 0, 0, ("alpha-x", "7"), "build.5")),
        ("1.0.0+20260101", (1, 0, 0, (), "20260101")),
    ],
)
def test_parse_accepts_semver_with_optional_v(text, expected):
    version = rc.parse(text)

    assert (version.major, version.minor, version.patch, version.pre, version.build) == expected


@pytest.mark.parametrize(
    "text",
    ["", "1.2", "1.2.3.4", "v01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3+", "V1.2.3",
     "release-1.2.3", "1.2.3 beta", "latest", "1.2.3-rc..1"],
)
def test_parse_rejects_malformed_versions(text):
    with pytest.raises(rc.InvalidInput):
        rc.parse(text)


def test_precedence_follows_semver_section_11():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
               "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]

    shuffled = list(reversed(ordered))
    result = sorted(shuffled, key=lambda t: rc.parse(t).precedence())

    assert result == ordered


def test_build_metadata_does_not_change_precedence():
    assert rc.parse("1.0.0+a").precedence() == rc.parse("1.0.0+b").precedence()


# --- categorising --------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "previous", "category"),
    [
        ("1.4.3", "1.4.2", "patch"),
        ("1.5.0", "1.4.2", "minor"),
        ("2.0.0", "1.4.2", "major"),
        ("1.5.1", "1.4.2", "minor"),       # skipping numbers still counts the left-most change
        ("0.3.0", "0.2.5", "minor"),       # 0.y.z is read literally
        ("0.2.6", "0.2.5", "patch"),
        ("2.0.0-rc.1", "1.4.2", "major"),  # a pre-release against the last stable
        ("1.4.3-beta.1", "1.4.2", "patch"),
    ],
)
def test_categorise_names_the_left_most_changed_component(current, previous, category):
    assert rc.categorise(rc.parse(current), rc.parse(previous)) == category


def test_first_release_is_initial():
    assert rc.categorise(rc.parse("0.1.0"), None) == "initial"


@pytest.mark.parametrize(("current", "previous"), [("1.4.2", "1.4.2"), ("1.4.1", "1.4.2"),
                                                   ("1.4.2-rc.1", "1.4.2")])
def test_categorise_refuses_a_version_that_is_not_newer(current, previous):
    with pytest.raises(rc.InvalidInput):
        rc.categorise(rc.parse(current), rc.parse(previous))


def test_previous_stable_skips_prereleases_non_versions_and_the_current_tag():
    tags = ["v1.3.0", "v1.4.0", "v1.4.1", "v2.0.0-rc.1", "v2.0.0-rc.2", "nightly", "v2.0.0", "docs-v9"]

    previous = rc.previous_stable(rc.parse("v2.0.0"), tags)

    assert str(previous) == "1.4.1"


def test_previous_stable_for_a_backport_is_the_highest_lower_release():
    tags = ["v1.3.3", "v1.3.4", "v2.0.0", "v2.1.0"]

    previous = rc.previous_stable(rc.parse("v1.3.5"), tags)

    assert str(previous) == "1.3.4"
    assert rc.categorise(rc.parse("v1.3.5"), previous) == "patch"


def test_previous_stable_is_none_without_earlier_releases():
    assert rc.previous_stable(rc.parse("v0.1.0"), ["v0.1.0", "v0.1.0-rc.1", "junk"]) is None


@pytest.mark.parametrize(
    ("version", "tags"),
    [
        ("1.5.0", ["1.5.0", "1.5", "1"]),
        ("v0.2.0", ["0.2.0", "0.2", "0"]),
        ("2.0.0-rc.1", ["2.0.0-rc.1"]),
        ("1.0.0+build.7", ["1.0.0-build.7"]),
    ],
)
def test_image_tags_move_only_for_stable_releases(version, tags):
    assert rc.image_tags(rc.parse(version)) == tags


# --- the command -----------------------------------------------------------------


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=cwd, check=False)


def _output(result):
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


@pytest.fixture()
def tagged_repo(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q",
        "--allow-empty", "-m", "first")
    for tag in ["v0.9.0", "v1.0.0", "v1.1.0-rc.1", "not-a-version"]:
        git("tag", tag)
    return tmp_path


def test_cli_reads_git_tags_and_prints_workflow_outputs(tagged_repo):
    result = _run("v1.1.0", "--repo", str(tagged_repo))

    assert result.returncode == 0, result.stderr
    assert _output(result) == {
        "version": "1.1.0",
        "category": "minor",
        "previous": "1.0.0",
        "prerelease": "false",
        "image_tags": "1.1.0 1.1 1",
    }


def test_cli_first_release_in_an_untagged_repo_is_initial(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)

    result = _run("v0.1.0", "--repo", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert _output(result)["category"] == "initial"
    assert _output(result)["previous"] == ""


def test_cli_marks_prereleases(tagged_repo):
    result = _run("v2.0.0-rc.1", "--repo", str(tagged_repo))

    assert _output(result)["category"] == "major"
    assert _output(result)["prerelease"] == "true"
    assert _output(result)["image_tags"] == "2.0.0-rc.1"


def test_cli_with_explicit_previous_does_not_need_git(tmp_path):
    result = _run("1.2.4", "--previous", "v1.2.3", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert _output(result)["category"] == "patch"


@pytest.mark.parametrize("args", [("banana",), ("1.2.3", "--previous", "1.2.3"),
                                  ("1.2.3", "--previous", "nope")])
def test_cli_exits_2_on_invalid_input(args, tmp_path):
    result = _run(*args, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "release-category:" in result.stderr


def test_cli_exits_2_outside_a_git_repository(tmp_path):
    result = _run("1.0.0", "--repo", str(tmp_path / "missing"))

    assert result.returncode == 2
