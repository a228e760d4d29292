"""How the embedded queue's cost follows its backlog (issue #10).

For each backlog size: a fresh DATA_DIR, `image-service migrate`, BACKLOG
messages written straight into `queue_messages` (as many sends would), then
one `image-service worker`. The messages name jobs that do not exist, so the
worker's whole work per message is the queue's: receive, look the job up,
acknowledge. The script times how fast the first --measure messages drain.
A queue whose receive or acknowledgement reads the whole backlog drains
slower the longer the backlog; one that reads only index entries does not.

    python tools/bench/backlog.py --bin target/release/image-service --backlog 1000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "lib"))

from harness import procs  # noqa: E402


def fill(db_path: Path, n: int) -> None:
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(db_path, timeout=60)
    rows = []
    for _ in range(n):
        job_id, image_id = uuid.uuid4(), uuid.uuid4()
        body = json.dumps({"v": 1, "job_id": str(job_id), "image_id": str(image_id), "source_key": f"originals/{image_id}"})
        rows.append(("jobs", body, None, 0, now_ms, now_ms))
    db.executemany(
        "INSERT INTO queue_messages (queue, body, receipt, receive_count, sent_at_ms, visible_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.commit()
    db.close()


def waiting(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM queue_messages WHERE queue = 'jobs'").fetchone()[0]


def drain_rate(binary: str, backlog: int, measure: int, slots: int, timeout: float) -> float:
    with tempfile.TemporaryDirectory(prefix="backlog-") as work:
        data = Path(work) / "data"
        data.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_URL", "S3_", "SQS_", "SNS_"))}
        env.update(DATA_DIR=str(data), METRICS_ADDR="127.0.0.1:0", LOG_FORMAT="json", WORKER_CONCURRENCY=str(slots))
        subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
        db_path = data / "image-service.db"
        fill(db_path, backlog)
        db = sqlite3.connect(db_path, timeout=60)
        worker = procs.start([binary, "worker"], Path(work) / "worker.log", env)
        try:
            start = None
            target = backlog - measure
            deadline = time.time() + timeout
            while time.time() < deadline:
                left = waiting(db)
                if start is None and left < backlog:
                    start = (time.perf_counter(), left)
                if left <= target:
                    t0, left0 = start
                    return (left0 - left) / max(time.perf_counter() - t0, 1e-6)
                time.sleep(0.01)
            raise RuntimeError(f"backlog {backlog}: {backlog - waiting(db)} of {measure} drained in {timeout} s")
        finally:
            procs.stop(worker, 15)
            db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the image-service binary")
    parser.add_argument("--backlog", default="1000,50000", help="comma-separated backlog sizes")
    parser.add_argument("--measure", type=int, default=1000, help="messages timed per backlog")
    parser.add_argument("--slots", type=int, default=8, help="WORKER_CONCURRENCY")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    for backlog in [int(b) for b in args.backlog.split(",")]:
        rate = drain_rate(args.bin, backlog, min(args.measure, backlog), args.slots, args.timeout)
        print(f"backlog {backlog:>7}: {rate:8.0f} messages/s over the first {min(args.measure, backlog)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
