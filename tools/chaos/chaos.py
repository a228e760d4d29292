"""Chaos harness for the worker's delivery guarantees.

Runs the real binary (one API, several workers) against moto and Postgres,
submits jobs through the API, and meanwhile:
  - SIGKILLs a random worker every few seconds and starts a new one;
  - sends some job messages a second time, as SQS may;
  - cuts the emulator off once for a few seconds: every connection to it is
    dropped and new ones are refused, as during a restart. (moto keeps its
    state in memory, so a real restart would erase the bucket and queues;
    the proxy gives the same outage with the state kept.)
At the end it counts, per submitted job, whether it reached a final state and
whether any effect happened twice: more than one row or object per preset,
or more than one distinct event for the job.

The parts are in chaosrun/ (cluster, proxy, load, effects); the AWS set-up,
ports and processes in tools/lib/harness.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from chaosrun.cluster import Cluster  # noqa: E402
from chaosrun.effects import Tally, tally  # noqa: E402
from chaosrun.load import Faults, Load  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--duplicate-share", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--smoke", action="store_true", help="a short run for CI: 30 jobs")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.kill_every = 30, 1.5
    return args


def summary(args: argparse.Namespace, result: Tally, faults: Faults, elapsed: float, logs: Path) -> str:
    c = result.counts
    return (
        f"submitted={result.submitted} succeeded={c['succeeded']} failed={c['failed']} dead={c['dead']} "
        f"lost={result.lost} duplicate-effects={result.duplicate_effects}\n"
        f"workers={args.workers} kills={faults.kills} duplicate-sends={faults.duplicates_sent} emulator-outages=1 "
        f"jobs-without-event={result.missing_events} repeated-event-deliveries={result.repeated_deliveries} "
        f"elapsed={elapsed:.1f}s logs={logs}"
    )


def main() -> int:
    args = parse_args()
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))
    cluster = Cluster(args.binary, args.workers)
    try:
        faults = Faults(rng, args.workers, args.kill_every, args.duplicate_share)
        load = Load(cluster, faults)
        started = time.time()
        load.upload_all(args.jobs)
        # Keep killing for a while after the last upload, then let the workers finish.
        load.settle(args.timeout)
        elapsed = time.time() - started
        result = tally(load)
    finally:
        cluster.close()
    print(summary(args, result, faults, elapsed, cluster.work))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
