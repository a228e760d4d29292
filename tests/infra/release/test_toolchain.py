"""One Rust release everywhere: rust-toolchain.toml, the workspace's
rust-version (the declared minimum is the release that is tested), the
Dockerfile's rust image and the CI action's default toolchain."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def toolchain() -> str:
    return tomllib.loads((REPO / "rust-toolchain.toml").read_text())["toolchain"]["channel"]


def test_the_declared_minimum_is_the_tested_release():
    declared = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    assert toolchain().startswith(declared + "."), (declared, toolchain())


def test_the_image_builds_with_the_same_release():
    dockerfile = (REPO / "Dockerfile").read_text()
    images = re.findall(r"^FROM rust:(\d+\.\d+)(?:\.\d+)?-", dockerfile, re.M)
    assert images, "the Dockerfile builds from a rust image"
    major_minor = ".".join(toolchain().split(".")[:2])
    assert set(images) == {major_minor}, images


def test_ci_installs_the_same_release():
    action = (REPO / ".github/actions/setup-rust/action.yml").read_text()
    default = re.search(r"toolchain:\n(?:\s+.*\n)*?\s+default:\s*\"?([\d.]+)\"?", action)
    assert default, "setup-rust declares a default toolchain"
    assert default.group(1) == toolchain()
