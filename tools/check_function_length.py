#!/usr/bin/env python3
"""Lists every Python function longer than a limit (issue 19: 80 lines, outside tests).

    python3 tools/check_function_length.py [--max 80] [PATH ...]   (default: tools docker tests/infra)

A function's length is its lines from `def` (decorators included) to its last line;
nested functions count within their parent and on their own. Test files (test_*.py) are
reported apart and do not fail the check. Exit status 1 if any other function is too long.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def python_files(paths: list[str]):
    for path in map(Path, paths):
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*.py")):
            if not any(part in (".venv", "node_modules", "__pycache__") for part in file.parts):
                yield file
        for file in sorted(path.rglob("*")):  # scripts without the .py suffix
            if file.is_file() and not file.suffix and file.read_bytes()[:40].startswith(b"#!") \
                    and b"python" in file.read_bytes()[:40]:
                yield file


def long_functions(file: Path, limit: int):
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > limit:
                yield node.name, node.lineno, length


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, default=80)
    parser.add_argument("paths", nargs="*", default=["tools", "docker", "tests/infra"])
    args = parser.parse_args()
    files = failures = 0
    for file in python_files(args.paths):
        files += 1
        for name, line, length in long_functions(file, args.max):
            is_test = file.name.startswith("test_")
            failures += not is_test
            print(f"{file}:{line}: {name} is {length} lines{' (a test: allowed)' if is_test else ''}")
    print(f"{files} files, {failures} functions over {args.max} lines outside tests")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
