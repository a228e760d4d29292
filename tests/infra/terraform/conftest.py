"""Fixtures for the terraform structural tests: the parsed tree is shared by every test."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tfhcl import Tree  # noqa: E402


@pytest.fixture(scope="session")
def tree() -> Tree:
    return Tree()
