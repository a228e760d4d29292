#!/usr/bin/env python3
"""Writes the copy of the Dockerfile that scripts/check-image builds.

The Dockerfile pins its two bases by digest, and this machine reaches no
registry, so the copy takes local stand-ins in their place. Everything else
is kept byte for byte, except what cannot work offline, each swapped by one
rule below. Whatever this script does not recognise stops it: a check that
silently built something other than the Dockerfile would prove nothing.

Usage: swap_dockerfile.py DOCKERFILE OUT --rust-image IMG --runtime-image IMG
                          --rust-version X.Y.Z --offline-context NAME
"""

import argparse
import re
import sys

# The stages the Dockerfile has and where each comes from. A new stage, a
# renamed one or a new external base means this table (and the stand-ins)
# must be looked at again.
EXPECTED_STAGES = ["chef", "planner", "builder", "runtime"]
RUST_BASE = re.compile(r"^rust:(?P<version>\d+\.\d+(?:\.\d+)?)-slim-bookworm@sha256:[0-9a-f]{64}$")
RUNTIME_BASE = re.compile(r"^gcr\.io/distroless/cc-debian12:nonroot@sha256:[0-9a-f]{64}$")

# The one thing fetched from outside the registries. AWS is unreachable here,
# so a placeholder PEM (tools/image/offline/) comes from a named build context.
RDS_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
RDS_BUNDLE_DEST = "/etc/ssl/certs/rds-global-bundle.pem"
RDS_PLACEHOLDER = "rds-global-bundle.placeholder.pem"


class SwapError(Exception):
    pass


def instructions(lines):
    """Yields (first line index, last line index, text) of each instruction,
    continuation lines joined, comments and blank lines skipped."""
    start, parts = None, []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if start is None and (not stripped or stripped.startswith("#")):
            continue
        if start is not None and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if start is None:
            start = index
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        yield start, index, " ".join(parts)
        start, parts = None, []
    if start is not None:
        raise SwapError(f"line {start + 1}: an instruction continues past the end of the file")


def swap(text, rust_image, runtime_image, rust_version, offline_context):
    lines = text.splitlines(keepends=True)
    stages = []
    url_adds = []
    for first, last, instruction in instructions(lines):
        keyword = instruction.split(None, 1)[0].upper()
        if keyword == "FROM":
            if first != last:
                raise SwapError(f"line {first + 1}: a FROM continued over several lines")
            match = re.fullmatch(r"FROM\s+(?:--platform=\S+\s+)?(\S+)\s+AS\s+(\S+)", instruction, re.IGNORECASE)
            if not match:
                raise SwapError(f"line {first + 1}: a FROM without `AS <stage>`: {instruction}")
            stages.append((first, match.group(1), match.group(2)))
        elif keyword == "ADD" and re.search(r"\s(https?|git)://|\sgit@", instruction):
            url_adds.append((first, last, instruction))

    names = [name for _, _, name in stages]
    if names != EXPECTED_STAGES:
        raise SwapError(f"the Dockerfile's stages are {names}, the swap knows {EXPECTED_STAGES}")
    sources = {name: (index, source) for index, source, name in stages}

    out = list(lines)
    index, source = sources["chef"]
    match = RUST_BASE.match(source)
    if not match:
        raise SwapError(f"line {index + 1}: chef's base is {source}, not rust:<version>-slim-bookworm@sha256:…")
    pinned = match.group("version")
    if rust_version != pinned and not rust_version.startswith(pinned + "."):
        raise SwapError(f"the Dockerfile pins Rust {pinned}, the stand-in has {rust_version}")
    out[index] = lines[index].replace(source, rust_image, 1)

    for stage in ("planner", "builder"):
        index, source = sources[stage]
        if source != "chef":
            raise SwapError(f"line {index + 1}: stage {stage} is built FROM {source}, the swap expects chef")

    index, source = sources["runtime"]
    if not RUNTIME_BASE.match(source):
        raise SwapError(f"line {index + 1}: the runtime's base is {source}, not distroless/cc-debian12:nonroot")
    out[index] = lines[index].replace(source, runtime_image, 1)

    if len(url_adds) != 1:
        raise SwapError(f"{len(url_adds)} ADD instructions fetch a URL; the swap knows exactly one, the RDS CA bundle")
    first, last, instruction = url_adds[0]
    match = re.fullmatch(r"ADD\s+(--chmod=\S+)\s+(\S+)\s+(\S+)", instruction, re.IGNORECASE)
    if not match or match.group(2) != RDS_BUNDLE_URL or match.group(3) != RDS_BUNDLE_DEST:
        raise SwapError(f"line {first + 1}: an ADD the swap does not know: {instruction}")
    out[first] = f"COPY --from={offline_context} {match.group(1)} {RDS_PLACEHOLDER} {RDS_BUNDLE_DEST}\n"
    for index in range(first + 1, last + 1):
        out[index] = ""

    header = (
        "# GENERATED by tools/image/swap_dockerfile.py from the repository's Dockerfile\n"
        f"# for scripts/check-image: FROM lines swapped for local stand-ins ({rust_image},\n"
        f"# {runtime_image}), and the RDS CA bundle ADD for a local placeholder PEM.\n"
    )
    # A `# syntax=` directive must stay on the first line to mean anything.
    if out and out[0].startswith("# syntax="):
        return out[0] + header + "".join(out[1:])
    return header + "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dockerfile")
    parser.add_argument("out")
    parser.add_argument("--rust-image", required=True)
    parser.add_argument("--runtime-image", required=True)
    parser.add_argument("--rust-version", required=True)
    parser.add_argument("--offline-context", required=True)
    args = parser.parse_args()
    with open(args.dockerfile, encoding="utf-8") as file:
        text = file.read()
    try:
        swapped = swap(text, args.rust_image, args.runtime_image, args.rust_version, args.offline_context)
    except SwapError as err:
        print(f"error: {args.dockerfile}: {err}", file=sys.stderr)
        print("error: the Dockerfile changed in a way tools/image/swap_dockerfile.py does not understand;", file=sys.stderr)
        print("error: update the swap (and the stand-ins) rather than building something else", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as file:
        file.write(swapped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
