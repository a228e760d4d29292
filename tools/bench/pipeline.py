"""The pipeline benchmark (issue #10): the service as it is deployed.

Runs `image-service api` and `image-service worker` as separate processes on
the embedded defaults (SQLite in DATA_DIR, objects on disk, the queue table)
and on the AWS path (moto for S3/SQS/SNS/KMS, a fresh Postgres database),
drives them through the HTTP API, hears each job's outcome on a webhook this
script serves (WEBHOOK_URL), and prints one table:

  1. throughput on the 8 large photos of the corpus (>= 100 jobs, default
     presets, 1 worker with WORKER_CONCURRENCY=2), against the engine alone on
     the same files at the same concurrency, in the same run, interleaved;
  2. overhead on 64x64 JPEGs: jobs/s and CPU ms per job of the API and the
     worker processes (/proc/PID/stat), for the first jobs on fresh tables
     and for jobs once the tables hold ROWS jobs (pre-filled by SQL copies of
     a real job, or by running jobs: --prefill), in pairs of runs back to
     back (--tiny-rounds), so the change is a median of paired ratios;
  3. upload-to-event latency, p50/p99, one job at a time and under open-loop
     arrivals at 80% of the throughput measured in 2, beside the engine's time
     for the same image;
  4. scaling on the photos: 1 worker process x 1 slot, 2 processes x 1 slot,
     1 process x 2 slots;
  5. peak RSS (VmHWM) of the worker at its concurrency, and of the API during
     a burst of 2 MB uploads against a burst of small ones.

On the AWS path it also counts the emulator's requests and CPU time, and
times raw SQS/S3 calls, so the emulator's share of the cost is visible.

Run it through scripts/bench-pipeline, which sets up the virtualenvs and the
binaries. The parts are in pipebench/ (common, events, client, emulator, stack,
load, engine, prefill, corpus, runs, report); the emulator, ports and processes
in tools/lib/harness. Exits non-zero if any job is lost, fails, or never announces its
outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from pipebench.common import log  # noqa: E402
from pipebench.corpus import corpus_photos, job_budget_mib, make_images  # noqa: E402
from pipebench.engine import Engine  # noqa: E402
from pipebench.events import Events  # noqa: E402
from pipebench.load import PROBLEMS  # noqa: E402
from pipebench.report import header, report  # noqa: E402
from pipebench.runs import Inputs, run_backend  # noqa: E402

# Defaults that depend on --quick: (quick, full).
DEFAULTS = dict(rounds=(1, 3), photo_jobs=(8, 104), photo_latency_jobs=(2, 10), tiny_jobs=(100, 1000),
                rows=(2000, 50000), latency_jobs=(20, 200), open_loop_seconds=(3.0, 15.0), burst=(16, 200))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the image-service binary")
    parser.add_argument("--bench-bin", default=os.environ.get("BENCH_BIN"), help="imaging's bench example binary")
    parser.add_argument("--moto-server", default=str(ROOT / ".venv/test/bin/moto_server"))
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--corpus", default=os.environ.get("CORPUS"))
    parser.add_argument("--backends", default="embedded,aws")
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI (< 2 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds of the photo runs (median over them); default 3, quick 1")
    parser.add_argument("--photo-jobs", type=int, help="jobs per photo run; default 104 (13 x 8), quick 8")
    parser.add_argument("--photo-latency-jobs", type=int, help="default 10, quick 2")
    parser.add_argument("--tiny-jobs", type=int, help="jobs per tiny run; default 1000, quick 100")
    parser.add_argument("--rows", type=int, help="jobs in the full tables of the tiny runs; default 50000, quick 2000")
    parser.add_argument("--tiny-rounds", type=int,
                        help="pairs of tiny runs, fresh and full tables back to back; default 3 (embedded), 1 (aws), quick 1")
    parser.add_argument("--prefill", choices=["sql", "jobs"], default="sql")
    parser.add_argument("--latency-jobs", type=int, help="one-at-a-time latency jobs; default 200, quick 20")
    parser.add_argument("--open-loop-seconds", type=float, help="default 15, quick 3")
    parser.add_argument("--upload-concurrency", type=int, default=8)
    parser.add_argument("--tiny-slots", type=int,
                        help="WORKER_CONCURRENCY for the tiny and latency runs; default: the worker's own default")
    parser.add_argument("--burst", type=int, help="uploads per API memory burst; default 200, quick 16")
    parser.add_argument("--burst-concurrency", type=int, default=16)
    parser.add_argument("--job-budget-mib", type=float, help="override the per-job memory budget")
    parser.add_argument("--out", help="scratch directory (kept); default a new temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the Postgres databases")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting for every image-service process (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--build-label", help="how the binary was built, for the report (default: from its path)")
    args = parser.parse_args()
    for name, (quick, full) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def build_label(args: argparse.Namespace) -> str:
    return args.build_label or next(
        (f"{kind} build" for kind in ("debug", "release") if f"/{kind}/" in str(Path(args.bin).resolve())), "build unknown"
    )


def main() -> int:
    args = parse_args()
    photos = corpus_photos(args.corpus, args.quick)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    tiny, big, huge = make_images(work)
    budget = job_budget_mib(args)
    engine = Engine(args.bench_bin, work / "tiny.jpg")
    events = Events()
    build = build_label(args)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"binary {args.bin} ({version}, {build}); engine: {engine.note}; work dir {work}")

    started = time.time()
    inputs = Inputs(args, work, events, engine, photos, tiny, big, huge)
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        results.append(run_backend(backend, inputs))
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    events.close()

    print()
    print(header(results, args, version, build, time.time() - started, engine, budget))
    print()
    print(report(results, args, budget, engine))
    print()
    status = PROBLEMS.report()
    print(f"logs and results.json: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
