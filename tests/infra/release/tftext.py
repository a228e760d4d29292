"""Just enough of terraform/ for the release tests, read as text.

These tests run in check-infra's virtualenv, which has no HCL parser (python-hcl2 lives in
check-terraform's, beside checkov). The files they read are plain HCL without heredocs, so a
block is its header plus the braces that balance it, ignoring braces in strings and comments.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TERRAFORM = REPO / "terraform"


def _body_from(text: str, open_brace: int) -> str:
    depth, in_string, in_comment, escaped = 0, False, False, False
    for i in range(open_brace, len(text)):
        char = text[i]
        if in_comment:
            in_comment = char != "\n"
            continue
        if in_string:
            escaped = char == "\\" and not escaped
            in_string = char != '"' or escaped
            continue
        if char == '"':
            in_string = True
        elif char == "#" or text.startswith("//", i):
            in_comment = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_brace + 1 : i]
    raise ValueError("unbalanced braces")


def blocks(text: str, kind: str, *labels: str) -> dict[tuple[str, ...], str]:
    """Labels -> body of every `kind "label"… {` block; a label of None matches any."""
    pattern = rf'^\s*{kind}((?:\s+"[^"]*")*)\s*\{{'
    found = {}
    for match in re.finditer(pattern, text, flags=re.M):
        names = tuple(re.findall(r'"([^"]*)"', match[1]))
        if all(want is None or want == got for want, got in zip(labels, names)) and len(names) >= len(labels):
            found[names] = _body_from(text, match.end() - 1)
    return found


def attribute(body: str, name: str) -> str | None:
    """The expression of a one-line attribute at the top level of a block body."""
    depth = 0
    for line in body.splitlines():
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        if depth == 0:
            match = re.match(rf"\s*{name}\s*=\s*(.+?)\s*$", line)
            if match:
                return match[1]
        depth += line.count("{") - line.count("}")
    return None


def read(*parts: str) -> str:
    """All .tf files of a directory under terraform/, concatenated."""
    directory = TERRAFORM.joinpath(*parts)
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.tf")))


def unquote(expression: str | None) -> str | None:
    return expression[1:-1] if expression and expression.startswith('"') and expression.endswith('"') else expression
