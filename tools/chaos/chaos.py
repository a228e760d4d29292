"""Chaos harness for the service's delivery guarantees (docs/reliability.md).

Runs the real binary (one API, several workers) on each backend set and submits jobs
through the API while faults are injected:
  - both: SIGKILLed workers (every few seconds) and API restarts (SIGKILL, then a new
    one on the same port), job messages sent twice, a Redis outage (the read cache),
    a webhook receiver answering 503;
  - aws (moto + a Postgres of the run's own): S3 PutObject answered `503 SlowDown`,
    SQS DeleteMessage(Batch) throttled or failed per entry, SNS Publish throttled,
    latency, connection resets and a blackhole at the emulator, a Postgres restart and
    a Postgres blackhole;
  - embedded (SQLite, local disk, the queue table): the object store's disk full.
Then the ledger (chaosrun/ledger.py) reconciles every accepted upload with its rows,
objects and events; any mismatch fails the run.

The parts are in chaosrun/ (cluster, proxy, services, load, effects, ledger); the AWS
set-up, ports and processes in tools/lib/harness.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from chaosrun import ledger, selftest  # noqa: E402
from chaosrun.cluster import BACKENDS, Cluster, make  # noqa: E402
from chaosrun.load import FINAL, Load  # noqa: E402

# A worker killed between a job's commit and its publish leaves the event to the
# message's redelivery (a visibility timeout later, 8 s here, maybe waiting out the
# 10 s publish grace once more); a webhook delivery claimed by a worker that was then
# killed is due again after its 60 s lease. Events are owed, not instant.
EVENT_DEADLINE = 100.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--jobs", type=int, default=2000, help="per backend")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--duplicate-share", type=float, default=0.1)
    parser.add_argument("--window", type=float, default=6.0, help="seconds each windowed fault lasts")
    parser.add_argument("--cycles", type=int, default=3, help="times the fault plan runs over the uploads")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--api-kill", choices=["anytime", "between"], default="anytime",
                        help="SIGKILL the API mid-request too, or only between two uploads")
    parser.add_argument("--smoke", action="store_true", help="a short run for CI: 200 jobs, every fault once")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.kill_every, args.window, args.cycles = 200, 2.0, 3.0, 1
    return args


def owed(cluster: Cluster, load: Load) -> list[str]:
    """What is still to come before the ledger can be read: per channel, the final jobs
    without an event; messages still on the job queue; webhook deliveries not delivered."""
    cluster.collect_events()
    missing = []
    for channel in cluster.event_channels():
        have = cluster.events.by_job(channel)
        n = sum(1 for j in load.accepted if load.final.get(j) in FINAL and j not in have)
        if n:
            missing.append(f"{n} events on {channel}")
    left = cluster.queue_left()
    if left:
        missing.append(f"{left} queued messages")
    pending = cluster.query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
    if int(pending[0]["n"]):
        missing.append(f"{pending[0]['n']} pending webhook deliveries")
    return missing


def wait_for_effects(cluster: Cluster, load: Load, deadline: float) -> list[str]:
    until = time.time() + deadline
    while True:
        missing = owed(cluster, load)
        if not missing or time.time() >= until:
            return missing
        time.sleep(1.0)


def fault_line(cluster: Cluster, load: Load) -> str:
    parts = [f"workers={cluster.worker_count}", f"worker-kills={load.kills}", f"api-restarts={cluster.api_restarts}",
             f"duplicate-sends={load.duplicates_sent}", f"redis-outages={cluster.redis.outages}",
             f"webhook-503s={cluster.webhook.refused}"]
    if cluster.backend == "aws":
        injected = cluster.proxy.counts.injected
        parts += [f"s3-put-slowdowns={injected.get('s3-put-slowdown', 0)}",
                  f"sqs-delete-errors={injected.get('sqs-delete-errors', 0)}",
                  f"sns-publish-errors={injected.get('sns-publish-errors', 0)}",
                  f"delayed-requests={injected.get('emulator-latency', 0)}",
                  f"reset-requests={injected.get('emulator-resets', 0)}",
                  f"emulator-blackholes={load.faults_done.count('emulator-blackhole')}",
                  f"postgres-restarts={cluster.postgres.restarts}",
                  f"postgres-blackholes={load.faults_done.count('postgres-blackhole')}"]
    else:
        answers = ",".join(f"{k}:{v}" for k, v in sorted(load.full_disk_answers.items())) or "-"
        recovered = max(load.recovered_after, default=0.0)
        parts += [f"full-disks={load.faults_done.count('full-disk')}", f"full-disk-answers={answers}",
                  f"recovered-after={recovered:.1f}s"]
    return " ".join(parts)


def run_backend(backend: str, args: argparse.Namespace, rng: random.Random) -> bool:
    cluster = make(backend, args.binary, args.workers, rng, args.jobs)
    ok = False
    try:
        load = Load(cluster, rng, args.jobs, args.kill_every, args.duplicate_share, args.window, args.cycles,
                    api_kill=args.api_kill)
        started = time.time()
        say(backend, f"uploading {args.jobs} jobs; {len(load.plan)} faults planned")
        load.upload_all()
        say(backend, f"uploaded; settling (faults done: {len(load.faults_done)})")
        settled = load.settle(args.timeout)
        say(backend, "settled; waiting for events, queue and webhook deliveries")
        missing = wait_for_effects(cluster, load, EVENT_DEADLINE)
        if missing:
            load.notes += [f"while owed: {line}" for line in cluster.diagnose()]
        load.refresh_final()
        say(backend, "checking the ledger")
        elapsed = time.time() - started
        cluster.stop_services()
        cluster.collect_events()
        result = ledger.check(cluster, load.accepted, load.final)
        if not settled:
            result.bad("run", f"not settled within {args.timeout:.0f} s")
        for what in missing:
            result.bad("run", f"still owed after {EVENT_DEADLINE:.0f} s: {what}")
        for problem in load.problems:
            result.bad("fault", problem)
        for note in load.notes:
            print(f"[{backend}] note: {note}")
        for name in load.faults_missing:
            print(f"[{backend}] fault not injected: {name}")
        for line in result.mismatches[:200]:
            print(f"[{backend}] mismatch: {line}")
        if len(result.mismatches) > 200:
            print(f"[{backend}] … and {len(result.mismatches) - 200} more")
        c = result.counts
        repeats = " ".join(f"{ch}={n}/{result.deliveries.get(ch, 0)}" for ch, n in sorted(result.raw_repeats.items()))
        print(f"backend={backend} submitted={result.accepted} succeeded={c['succeeded']} failed={c['failed']} "
              f"dead={c['dead']} lost={result.lost} duplicate-effects={result.duplicate_effects} "
              f"mismatches={len(result.mismatches)} elapsed={elapsed:.1f}s")
        print(f"  faults: {fault_line(cluster, load)}")
        print(f"  ledger: objects-checked={result.objects_checked} repeated-deliveries(raw/all)={repeats} "
              f"leftover-temp-files={result.temp_files} enqueue-failed-503s={result.enqueue_failed} upload-answers="
              f"{','.join(f'{k}:{v}' for k, v in sorted(load.upload_answers.items()))} logs={cluster.work}")
        if backend == "aws":
            calls = cluster.proxy.counts.seen
            print("  emulator-calls: " + " ".join(f"{k}={v}" for k, v in sorted(calls.items())))
        ok = result.ok
    finally:
        cluster.close()
        if ok and not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(cluster.work, ignore_errors=True)
    return ok


def say(backend: str, what: str) -> None:
    print(f"[{backend}] {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def main() -> int:
    # A SIGTERM (a CI timeout) still runs the clean-up: servers stopped, tmpfs unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    wrong = selftest.run()
    if wrong:
        print("the ledger's self-test failed:\n  " + "\n  ".join(wrong))
        return 1
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    started = time.time()
    results = {b: run_backend(b, args, rng) for b in backends}
    verdicts = " ".join(f"{b}={'ok' if ok else 'FAILED'}" for b, ok in results.items())
    print(f"chaos: {verdicts} total-elapsed={time.time() - started:.1f}s")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
