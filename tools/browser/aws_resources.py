"""The emulator side of the browser test's AWS run: the service's resources in moto, and
the bucket's CORS rule as terraform/ writes it, allowing the example page's origin.

    .venv/test/bin/python tools/browser/aws_resources.py --endpoint URL --origin ORIGIN

Prints one JSON object: `env`, the service's settings for those resources, and `cors_rule`,
the rule it put on the bucket.

The rule is read from terraform/modules/storage/s3.tf, not restated here, so the browser
tests the CORS configuration that ships. It also checks that the emulator really answers
preflights from the bucket's configuration (refused before the rule is put, allowed for
the page's origin after, refused for another origin): moto's server answers every
preflight with `*` unless it runs with MOTO_DISABLE_GLOBAL_CORS=1, and a browser test
against that would pass whatever the rule said.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools/lib"))

from harness import aws  # noqa: E402

TERRAFORM = ROOT / "terraform/modules/storage/s3.tf"
FOREIGN_ORIGIN = "http://not-the-page.invalid"


def terraform_cors_rule(path: Path, origins: list[str]) -> dict:
    """The bucket's `cors_rule` in S3's API shape, with `origins` for its variable ones.

    A small reader for this one block (literal lists, a number, the origins variable),
    failing loudly on anything else rather than guessing."""
    text = path.read_text()
    start = text.find('resource "aws_s3_bucket_cors_configuration"')
    rule = re.search(r"cors_rule\s*\{(.*?)\n\s*\}", text[start:], re.S) if start >= 0 else None
    if not rule:
        sys.exit(f"error: no aws_s3_bucket_cors_configuration with a cors_rule in {path}")
    fields: dict[str, object] = {}
    for name, value in re.findall(r"(\w+)\s*=\s*(\[.*?\]|[^\n]+)", rule.group(1), re.S):
        value = value.strip()
        if name == "allowed_origins":
            fields[name] = origins
        elif value.startswith("["):
            fields[name] = json.loads(re.sub(r",\s*\]", "]", value))
        elif value.startswith('"'):
            fields[name] = json.loads(value)
        elif value.isdigit():
            fields[name] = int(value)
        else:
            sys.exit(f"error: cannot read {name} = {value} in the cors_rule of {path}")
    keys = {"id": "ID", "allowed_methods": "AllowedMethods", "allowed_origins": "AllowedOrigins",
            "allowed_headers": "AllowedHeaders", "expose_headers": "ExposeHeaders",
            "max_age_seconds": "MaxAgeSeconds"}
    unknown = set(fields) - set(keys)
    if unknown or "allowed_methods" not in fields:
        sys.exit(f"error: the cors_rule of {path} has {sorted(unknown) or 'no allowed_methods'}; update this reader")
    return {keys[name]: value for name, value in fields.items()}


def preflight(url: str, origin: str, headers: list[str]) -> tuple[int, str | None]:
    """(status, Access-Control-Allow-Origin) of a browser's preflight for a PUT."""
    request = urllib.request.Request(url, method="OPTIONS", headers={
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": ",".join(headers),
    })
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Access-Control-Allow-Origin")


def allows(status: int, allowed: str | None, origin: str) -> bool:
    """Whether a browser would go on after this preflight answer: a 2xx naming its origin.
    (The browser then checks the allowed methods and headers itself; moto returns the
    rule's lists without matching the request against them, as S3 would.)"""
    return 200 <= status < 300 and allowed in ("*", origin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the moto server's URL")
    parser.add_argument("--origin", required=True, help="the example page's origin")
    args = parser.parse_args()

    aws.use_emulator_credentials()
    resources = aws.provision(args.endpoint, aws.Names.for_run("browser"))
    probe = f"{args.endpoint}/{resources.bucket}/uploads/probe"
    asked = ["content-type", "x-amz-server-side-encryption"]
    if allows(*preflight(probe, args.origin, asked), args.origin):
        sys.exit("error: the emulator allowed a preflight to a bucket without a CORS rule: it ignores the "
                 "bucket's CORS configuration (start moto_server with MOTO_DISABLE_GLOBAL_CORS=1)")

    rule = terraform_cors_rule(TERRAFORM, [args.origin])
    s3 = aws.client("s3", args.endpoint)
    s3.put_bucket_cors(Bucket=resources.bucket, CORSConfiguration={"CORSRules": [rule]})
    status, allowed = preflight(probe, args.origin, asked)
    if not allows(status, allowed, args.origin):
        sys.exit(f"error: the emulator refused the page's preflight under the rule ({status}, allow-origin {allowed!r})")
    if allows(*preflight(probe, FOREIGN_ORIGIN, asked), FOREIGN_ORIGIN):
        sys.exit(f"error: the emulator allowed a preflight from {FOREIGN_ORIGIN}, which the rule does not name")

    env = resources.service_env()
    env["AWS_ENDPOINT_URL"] = args.endpoint
    json.dump({"env": env, "cors_rule": rule}, sys.stdout)


if __name__ == "__main__":
    main()
