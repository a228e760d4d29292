"""Made-up API keys against the API (issue #26): honest latency and database lookups.

`image-service run` on the embedded defaults (the shipped limits: 5 requests a second per
address without a valid key, burst 20). Honest load: --requests GET /v1/jobs with a real key on
one keep-alive connection, before (quiet) and during a flood: --flooders threads sending
GET /v1/jobs (or --flood-path), each with a new random key, as fast as they can, from the same
address. Reports
honest p50/p99, what the flood got (401 = looked up, 429 = refused before any lookup) and the
database lookups the API counted (`image_api_key_lookups_total`).

    python tools/bench/keyflood.py --bin $CARGO_TARGET_DIR/debug/image-service
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "lib"))

from harness import procs  # noqa: E402
from harness.ports import free_port  # noqa: E402
from pipebench.common import percentile  # noqa: E402

KEY = "keyflood-bench-admin-key"


def honest(port: int, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", "/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
        out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return out


def flooder(port: int, stop: threading.Event, counts: dict[int, int], lock: threading.Lock, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        conn.request("GET", path, headers={"Authorization": f"Bearer isk_{secrets.token_hex(16)}"})
        answer = conn.getresponse()
        answer.read()
        with lock:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        if answer.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def lookups(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith("image_api_key_lookups_total"))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--flooders", type=int, default=8)
    parser.add_argument("--flood-path", default="/v1/jobs",
                        help="what the flood asks for; /healthz (no key checked) is the control run: the same "
                             "request volume, so the difference is what the made-up keys cost")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="keyflood-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_", "REDIS_"))}
    env.update(DATA_DIR=str(work), LISTEN_ADDR=f"127.0.0.1:{port}", METRICS_ADDR="127.0.0.1:0", ADMIN_API_KEY=KEY,
               RATE_LIMIT_PER_SECOND="100000", RATE_LIMIT_BURST="100000", TENANT_RATE_LIMIT_PER_SECOND="100000",
               TENANT_RATE_LIMIT_BURST="100000", RUST_LOG="warn")
    proc = procs.start([args.bin, "run"], work / "service.log", env)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
        honest(port, 200)  # warm up
        quiet = honest(port, args.requests)
        before = lookups(port)
        stop, lock, counts = threading.Event(), threading.Lock(), {}
        threads = [threading.Thread(target=flooder, args=(port, stop, counts, lock, args.flood_path), daemon=True) for _ in range(args.flooders)]
        started = time.monotonic()
        for t in threads:
            t.start()
        flooded = honest(port, args.requests)
        stop.set()
        for t in threads:
            t.join(10)
        seconds = time.monotonic() - started
        print(json.dumps({
            "flood_path": args.flood_path,
            "quiet_p50_ms": round(statistics.median(quiet), 3), "quiet_p99_ms": round(percentile(quiet, 99), 3),
            "flood_p50_ms": round(statistics.median(flooded), 3), "flood_p99_ms": round(percentile(flooded, 99), 3),
            "p50_ratio": round(statistics.median(flooded) / statistics.median(quiet), 2),
            "flood_seconds": round(seconds, 1), "flood_answers": counts,
            "db_lookups_during_flood": lookups(port) - before,
        }))
    finally:
        procs.stop(proc, 10)


if __name__ == "__main__":
    main()
