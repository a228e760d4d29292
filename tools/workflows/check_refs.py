#!/usr/bin/env python3
"""What actionlint and zizmor let through: references a runner would fail on.

For each workflow and composite action given (default: every one under
.github/), every `uses:` must be either
  - an action of this repository, `$/path` (GitHub's self-repository
    syntax, resolved at the running commit; the form zizmor recommends) or
    `./path` (relative to the checked-out workspace), naming a directory
    that holds an action.yml (or action.yaml); or
  - a remote one, `owner/repo[/path]@<40-hex commit>`, with a `# vX…`
    comment saying which release that commit is; or
  - `docker://…`.
Every repository script a `run:` step calls (`scripts/…`, `.github/scripts/…`,
`.ci/…`) must exist and be executable.

Prints one line per problem and exits 1 when there is any.
Usage: tools/workflows/check_refs.py [FILE…]   (from the repository root)
"""

import re
import sys
from pathlib import Path

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
REMOTE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@(?P<sha>[0-9a-f]{40})$")
SCRIPT = re.compile(r"(?<![\w./-])((?:\./)?(?:scripts|\.github/scripts|\.ci)/[A-Za-z0-9_.-]+)")


def check_uses(path: Path, number: int, ref: str, comment: str | None, root: Path) -> list[str]:
    where = f"{path}:{number}"
    if ref.startswith("docker://"):
        return []
    if ref.startswith(("$/", "./")):
        directory = root / ref[2:]
        if not ((directory / "action.yml").is_file() or (directory / "action.yaml").is_file()):
            return [f"{where}: local action {ref} has no action.yml"]
        return []
    if "/" not in ref.split("@", 1)[0] or not REMOTE.match(ref):
        return [f"{where}: {ref} is neither $/local, ./local nor owner/repo@<40-hex sha>"]
    if not comment or not re.match(r"v\d", comment.strip()):
        return [f"{where}: {ref} has no `# vX.Y.Z` comment naming its release"]
    return []


def check_file(path: Path, root: Path) -> list[str]:
    problems: list[str] = []
    in_run = False
    run_indent = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = USES.match(line)
        if match:
            problems += check_uses(path, number, match["ref"], match["comment"], root)
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if in_run and stripped and indent <= run_indent:
            in_run = False
        starts_run = re.match(r"(?:-\s+)?run:\s*(.*)$", stripped)
        if starts_run:
            in_run, run_indent = True, indent
            text = starts_run[1]
        elif in_run:
            text = stripped
        else:
            continue
        for script in SCRIPT.findall(text.split("#", 1)[0]):
            target = root / script.removeprefix("./")
            if not target.is_file():
                problems.append(f"{path}:{number}: runs {script}, which does not exist")
            elif not target.stat().st_mode & 0o111:
                problems.append(f"{path}:{number}: runs {script}, which is not executable")
    return problems


def main(argv: list[str]) -> int:
    root = Path.cwd()
    files = [Path(a) for a in argv] or sorted(
        [*Path(".github/workflows").glob("*.yml"), *Path(".github/actions").glob("*/action.yml")]
    )
    problems = [p for f in files for p in check_file(f, root)]
    for problem in problems:
        print(problem)
    print(f"{len(files)} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
