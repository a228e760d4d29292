"""How long DELETE /v1/images/{id} takes for an image with 3 presets x 3 preset
versions (issue #20; target: under 1 s embedded).

One `image-service run` on the embedded defaults per preset version: the first
processes --images uploads, the next two change every preset's quality (a new
version each) and reprocess, so each image ends with 9 variants. Then every
image is deleted and each DELETE is timed; the script prints the median and
the slowest, and checks that no object of any image is left on disk.

    python tools/bench/deletion.py --bin target/release/image-service --images 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "lib"))

from harness import ports, procs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ["kleiber.jpg", "astronaut.png", "dice_rgba.png", "cmyk.jpg", "orient3.jpg"]
ADMIN_KEY = "bench-deletion-admin-key"


def presets(quality: int) -> str:
    edges = {"large": 2048, "medium": 1024, "thumb": 256}
    return json.dumps([{"name": n, "max_edge": e, "format": "webp", "quality": quality} for n, e in edges.items()])


def call(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {ADMIN_KEY}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_for_variants(base: str, image: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = call("GET", f"{base}/v1/images/{image}")
        if status == 200 and len(body.get("variants", [])) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"image {image} did not reach {count} variants")


def serve(binary: str, data: Path, quality: int, log: Path):
    port = ports.free_port()
    env = dict(os.environ, DATA_DIR=str(data), LISTEN_ADDR=f"127.0.0.1:{port}", METRICS_ADDR="127.0.0.1:0",
               ADMIN_API_KEY=ADMIN_KEY, PRESETS=presets(quality), QUEUE_WAIT_SECS="1", RUST_LOG="warn")
    proc = procs.start([binary, "run"], log, env=env, append=True)
    base = ports.loopback_url(port)
    procs.wait_http(f"{base}/healthz", proc=proc)
    return proc, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data, log = Path(scratch), Path(scratch) / "run.log"
        images: list[str] = []
        for version, quality in enumerate((80, 81, 82), start=1):
            proc, base = serve(args.bin, data, quality, log)
            try:
                if version == 1:
                    for i in range(args.images):
                        photo = ROOT / "testdata" / PHOTOS[i % len(PHOTOS)]
                        kind = "image/png" if photo.suffix == ".png" else "image/jpeg"
                        status, job = call("POST", f"{base}/v1/images", photo.read_bytes(), kind)
                        assert status == 202, (status, job)
                        images.append(job["image_id"])
                else:
                    for preset in ("large", "medium", "thumb"):
                        status, summary = call("POST", f"{base}/v1/admin/reprocess", json.dumps({"preset": preset}).encode(),
                                               "application/json")
                        assert status == 200, (status, summary)
                for image in images:
                    wait_for_variants(base, image, 3 * version)
                if version == 3:
                    timings = []
                    for image in images:
                        started = time.perf_counter()
                        status, _ = call("DELETE", f"{base}/v1/images/{image}")
                        timings.append(time.perf_counter() - started)
                        assert status == 204, status
            finally:
                procs.stop(proc)
        objects = data / "objects"
        left = [p for p in objects.rglob("*") if p.is_file() and any(i in str(p) for i in images)]
        print(f"DELETE /v1/images/{{id}}, embedded, {len(images)} images x 9 variants (3 presets x 3 versions)")
        print(f"  median {statistics.median(timings) * 1000:.1f} ms, slowest {max(timings) * 1000:.1f} ms, "
              f"objects left {len(left)}")
        return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
