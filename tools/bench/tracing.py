"""The tracing benchmark (issue #24): the embedded pipeline with tracing off,
on at 100% sampling, and on at 1%, in one run.

Runs `image-service api` and one `image-service worker` on the embedded
defaults (pipebench.Stack) and, for each condition, restarts both with its
settings and pushes --jobs uploads of the pipeline benchmark's 64x64 JPEG
through them closed loop (8 uploaders), timed to the last job's event on the
webhook. Tiny jobs are the worst case for a per-job cost: the engine's few
milliseconds hide nothing. The conditions are interleaved, their order
rotated by one each round, so the machine's moods hit all alike; the report
gives each condition's median jobs/s and median CPU milliseconds per job (API
and worker together), and their ratios to tracing off.

  off    no OTEL_* variables: no OpenTelemetry layer at all (the default)
  on     OTEL_EXPORTER_OTLP_ENDPOINT at a local OTLP/HTTP sink,
         OTEL_TRACES_SAMPLER=always_on
  1pct   the same, OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.01

The sink answers 200 to every export and counts the requests and bytes, so
the report shows that the "on" conditions exported. Target (issue #24): at
1% sampling, within 2% of tracing off.

Run it through scripts/bench-tracing.
"""

from __future__ import annotations

import argparse
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from pipebench.common import log, median  # noqa: E402
from pipebench.corpus import make_images  # noqa: E402
from pipebench.events import Events  # noqa: E402
from pipebench.load import PROBLEMS, closed_loop  # noqa: E402
from pipebench.stack import Stack  # noqa: E402

CONDITIONS = ("off", "on", "1pct")
OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class Sink:
    """An OTLP/HTTP endpoint that accepts and counts every export."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                sink.requests += 1
                sink.bytes += length
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the image-service binary")
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI: 1 round of 100 jobs")
    parser.add_argument("--jobs", type=int, help="uploads per measurement; default 1000, quick 100")
    parser.add_argument("--rounds", type=int, help="rounds of the three conditions; default 7, quick 1")
    parser.add_argument("--out", help="scratch directory (kept); default a new temporary one")
    args = parser.parse_args()
    args.jobs = args.jobs or (100 if args.quick else 1000)
    args.rounds = args.rounds or (1 if args.quick else 7)
    # What pipebench.Stack reads besides these.
    args.postgres_url, args.keep, args.env = "", False, []
    return args


def settings(condition: str, sink: Sink) -> dict[str, str]:
    if condition == "off":
        return {}
    sampler = {"on": {"OTEL_TRACES_SAMPLER": "always_on"},
               "1pct": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, **sampler[condition]}


def main() -> int:
    args = parse_args()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"binary {args.bin} ({version}); work dir {work}")
    events, sink = Events(), Sink()
    tiny, _, _ = make_images(work)
    stack = Stack("embedded", args, work, events, None)
    for name in OTEL:
        stack.env.pop(name, None)
    base = dict(stack.env)
    runs: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    exported: dict[str, int] = {c: 0 for c in CONDITIONS}
    started, load0 = time.time(), os.getloadavg()[0]
    try:
        for rnd in range(args.rounds):
            order = CONDITIONS[rnd % 3:] + CONDITIONS[:rnd % 3]
            for condition in order:
                stack.env = dict(base, **settings(condition, sink))
                stack.start_api()
                stack.start_workers(1, None)
                closed_loop(stack, events, f"{condition}-warm", [tiny], 50, 8, 300)
                before = sink.requests
                got = closed_loop(stack, events, condition, [tiny], args.jobs, 8, 600)
                stack.stop_workers()
                stack.stop_api()
                exported[condition] += sink.requests - before
                runs[condition].append(got)
                cpu = sum(got["cpu_ms_per_job"].values())
                log(f"round {rnd + 1} {condition}: {got['jobs_per_s']:.1f} jobs/s, {cpu:.2f} CPU ms/job")
    finally:
        stack.close()
        events.close()
        sink.close()

    def jobs_per_s(c: str) -> float:
        return median([r["jobs_per_s"] for r in runs[c]])

    def cpu_ms(c: str) -> float:
        return median([sum(r["cpu_ms_per_job"].values()) for r in runs[c]])

    print()
    print(f"binary: {version}; {args.rounds} rounds x {args.jobs} jobs per condition; "
          f"{time.time() - started:.0f} s; load average at start {load0:.1f}")
    print()
    print("| condition | jobs/s (median) | vs off | CPU ms/job, API + worker (median) | vs off | exports received |")
    print("|---|---|---|---|---|---|")
    for c in CONDITIONS:
        print(f"| {c} | {jobs_per_s(c):.1f} | {jobs_per_s(c) / jobs_per_s('off'):.3f} | {cpu_ms(c):.2f} | "
              f"{cpu_ms(c) / cpu_ms('off'):.3f} | {exported[c]} |")
    if exported["on"] == 0:
        PROBLEMS.add("tracing on: the sink received no export")
    if exported["off"] != 0:
        PROBLEMS.add("tracing off: the sink received exports")
    print()
    status = PROBLEMS.report()
    print(f"logs: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
