#!/usr/bin/env python3
"""Every secret and variable a workflow reads is documented in docs/deploy.md.

A `secrets.NAME` or `vars.NAME` that nobody set evaluates to an empty string:
GitHub reports nothing, and the step fails late and obscurely, or skips without
a word. docs/deploy.md is where an operator learns what to set, so each name a
workflow or composite action reads must have a row in its settings table,
under the kind the workflow reads it as:

    | `NAME` | secret | ...
    | `NAME` | variable | ...

GITHUB_TOKEN is exempt: GitHub provides it to every run.

Prints one line per problem and exits 1 when there is any.
Usage: tools/workflows/check_settings.py [--docs PATH] [FILE…]   (from the repository root)
"""

import argparse
import re
import sys
from pathlib import Path

# `secrets.NAME`, `vars.NAME`, and the index form `secrets['NAME']`.
REFERENCE = re.compile(
    r"\b(?P<context>secrets|vars)(?:\.(?P<dotted>[A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"](?P<indexed>[^'\"]+)['\"]\s*\])"
)
DOC_ROW = re.compile(r"^\|\s*`(?P<name>[A-Za-z_][A-Za-z0-9_]*)`\s*\|\s*(?P<kind>secret|variable)\s*\|")
KIND = {"secrets": "secret", "vars": "variable"}
PROVIDED_BY_GITHUB = {"GITHUB_TOKEN"}


def documented(docs: Path) -> dict[str, str]:
    """Name -> kind for every settings row in the docs. GitHub names are case-insensitive."""
    rows = (DOC_ROW.match(line) for line in docs.read_text(encoding="utf-8").splitlines())
    return {row["name"].upper(): row["kind"] for row in rows if row}


def references(path: Path) -> list[tuple[int, str, str]]:
    """(line number, context, name) of every setting the file reads, outside YAML comment lines."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for match in REFERENCE.finditer(line):
            name = (match["dotted"] or match["indexed"]).upper()
            found.append((number, match["context"], name))
    return found


def check_file(path: Path, docs: Path, listed: dict[str, str]) -> list[str]:
    problems = []
    for number, context, name in references(path):
        if name in PROVIDED_BY_GITHUB:
            continue
        kind = KIND[context]
        if name not in listed:
            problems.append(f"{path}:{number}: {context}.{name} is not listed in {docs}")
        elif listed[name] != kind:
            problems.append(f"{path}:{number}: {context}.{name} is read as a {kind}, but {docs} lists it as a {listed[name]}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=Path("docs/deploy.md"))
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    files = args.files or sorted(
        [*Path(".github/workflows").glob("*.yml"), *Path(".github/actions").glob("*/action.yml")]
    )
    listed = documented(args.docs)
    problems = [p for f in files for p in check_file(f, args.docs, listed)]
    for problem in problems:
        print(problem)
    print(f"{len(files)} files, {len(listed)} documented settings, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
