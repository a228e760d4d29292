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
import shutil
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
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions the api and worker run, under valgrind's cachegrind "
                             "(no cache simulation): repeatable where wall time is not, and about 30x slower")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help="the conditions to run, comma-separated (off must be one); default all three")
    args = parser.parse_args()
    args.jobs = args.jobs or (100 if args.quick else 1000)
    args.rounds = args.rounds or (1 if args.quick else 7)
    args.conditions = tuple(c for c in CONDITIONS if c in args.conditions.split(","))
    if "off" not in args.conditions:
        parser.error("--conditions: off is what the others are compared with")
    # What pipebench.Stack reads besides these.
    args.postgres_url, args.keep, args.env = "", False, []
    return args


def settings(condition: str, sink: Sink) -> dict[str, str]:
    if condition == "off":
        return {}
    sampler = {"on": {"OTEL_TRACES_SAMPLER": "always_on"},
               "1pct": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, **sampler[condition]}


def service_cpu(run: dict) -> float:
    """CPU milliseconds per job of the API and the worker (not the harness)."""
    return run["cpu_ms_per_job"]["api"] + run["cpu_ms_per_job"]["worker"]


class Counted:
    """Runs the binary under cachegrind, one count file per process."""

    def __init__(self, binary: str, work: Path) -> None:
        if not shutil.which("valgrind"):
            raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
        self.counts = work / "instructions"
        self.counts.mkdir(exist_ok=True)
        self.wrapper = work / "image-service-under-cachegrind"
        self.wrapper.write_text(
            "#!/bin/sh\n"
            f"exec valgrind -q --tool=cachegrind --cache-sim=no --cachegrind-out-file={self.counts}/%p.out "
            f"{binary} \"$@\"\n")
        self.wrapper.chmod(0o755)

    def of(self, pid: int) -> int:
        """The instructions process `pid` ran (its count file, written at exit)."""
        for line in (self.counts / f"{pid}.out").read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise RuntimeError(f"no instruction count for process {pid}")


def lifetime(stack: Stack, events: Events, sink: Sink, tiny: bytes, label: str,
             jobs: int) -> tuple[dict | None, list[int]]:
    """Starts the API and one worker, warms them up with 50 jobs, pushes
    `jobs` measured ones (none: no result), and stops them. Returns the
    measurement, with the exports the sink got during it, and the
    processes' ids."""
    stack.start_api()
    stack.start_workers(1, None)
    closed_loop(stack, events, f"{label}-warm", [tiny], 50, 8, 300)
    got = None
    if jobs:
        before = sink.requests
        got = closed_loop(stack, events, label, [tiny], jobs, 8, 600)
        got["exports"] = sink.requests - before
    pids = stack.pids()
    stack.stop_workers()
    stack.stop_api()
    return got, pids["api"] + pids["worker"]


def measure(args: argparse.Namespace, stack: Stack, events: Events, sink: Sink, tiny: bytes,
            counted: Counted | None) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Runs the rounds; returns each condition's runs and the exports the sink got in them."""
    for name in OTEL:
        stack.env.pop(name, None)
    base = dict(stack.env)
    conditions = args.conditions
    runs: dict[str, list[dict]] = {c: [] for c in conditions}
    exported: dict[str, int] = {c: 0 for c in conditions}
    # A first start that is not measured: the first processes on a new
    # database do more (about 25% more instructions in the API) than any
    # after them, which would count against whichever condition came first.
    stack.env = dict(base)
    lifetime(stack, events, sink, tiny, "first-start", 0)
    for rnd in range(args.rounds):
        turn = rnd % len(conditions)
        for condition in conditions[turn:] + conditions[:turn]:
            stack.env = dict(base, **settings(condition, sink))
            got, pids = lifetime(stack, events, sink, tiny, condition, args.jobs)
            exported[condition] += got["exports"]
            if counted:
                # Less what the same start, warm-up and stop cost without the
                # measured jobs: start-up differs between the conditions (the
                # exporter's set-up), and is no cost per job.
                _, baseline = lifetime(stack, events, sink, tiny, f"{condition}-baseline", 0)
                ran = sum(map(counted.of, pids)) - sum(map(counted.of, baseline))
                got["instructions_per_job"] = ran / args.jobs
            runs[condition].append(got)
            counts = f", {got['instructions_per_job'] / 1e6:.3f} M instructions/job" if counted else ""
            log(f"round {rnd + 1} {condition}: {got['jobs_per_s']:.1f} jobs/s, "
                f"{service_cpu(got):.2f} CPU ms/job{counts}")
    return runs, exported


def report(runs: dict[str, list[dict]], exported: dict[str, int], counted: bool) -> None:
    """Prints the tables: medians, paired ratios, instructions, CPU per process."""
    conditions = list(runs)

    def jobs_per_s(r: dict) -> float:
        return r["jobs_per_s"]

    def instructions(r: dict) -> float:
        return r["instructions_per_job"]

    def of(c: str, figure) -> float:
        return median([figure(r) for r in runs[c]])

    def paired(c: str, figure) -> str:
        """The median over rounds of the condition's figure over off's in the
        same round, and their range: the machine's mood shifts between
        rounds more than within one."""
        ratios = sorted(figure(r) / figure(o) for r, o in zip(runs[c], runs["off"]))
        return f"{median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f})"

    print("| condition | jobs/s (median) | vs off | CPU ms/job, API + worker (median) | vs off | exports received |")
    print("|---|---|---|---|---|---|")
    for c in conditions:
        print(f"| {c} | {of(c, jobs_per_s):.1f} | {of(c, jobs_per_s) / of('off', jobs_per_s):.3f} | "
              f"{of(c, service_cpu):.2f} | {of(c, service_cpu) / of('off', service_cpu):.3f} | {exported[c]} |")
    print()
    print("Paired within each round (median of the rounds' ratios to off, and their range):")
    print()
    print("| condition | jobs/s vs off | CPU ms/job vs off |")
    print("|---|---|---|")
    for c in conditions[1:]:
        print(f"| {c} | {paired(c, jobs_per_s)} | {paired(c, service_cpu)} |")
    if counted:
        print()
        print("Instructions per measured job, API + worker (cachegrind; start-up, warm-up and stop taken out):")
        print()
        print("| condition | millions (median) | vs off | paired vs off (range) |")
        print("|---|---|---|---|")
        for c in conditions:
            ratio = of(c, instructions) / of("off", instructions)
            print(f"| {c} | {of(c, instructions) / 1e6:.3f} | {ratio:.4f} | {paired(c, instructions)} |")
    print()
    print("Where the CPU goes, per process (median CPU ms/job; ratio to off):")
    print()
    roles = sorted({role for r in runs["off"] for role in r["cpu_ms_per_job"]})
    print("| condition | " + " | ".join(roles) + " |")
    print("|---|" + "---|" * len(roles))
    for c in conditions:
        cells = []
        for role in roles:
            def cpu(r: dict) -> float:
                return r["cpu_ms_per_job"][role]
            cells.append(f"{of(c, cpu):.2f} ({of(c, cpu) / of('off', cpu):.3f})")
        print(f"| {c} | " + " | ".join(cells) + " |")


def main() -> int:
    args = parse_args()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"binary {args.bin} ({version}); work dir {work}")
    counted = Counted(args.bin, work) if args.instructions else None
    if counted:
        args.bin = str(counted.wrapper)
    events, sink = Events(), Sink()
    tiny, _, _ = make_images(work)
    stack = Stack("embedded", args, work, events, None)
    started, load0 = time.time(), os.getloadavg()[0]
    try:
        runs, exported = measure(args, stack, events, sink, tiny, counted)
    finally:
        stack.close()
        events.close()
        sink.close()
    print()
    print(f"binary: {version}; {args.rounds} rounds x {args.jobs} jobs per condition; "
          f"{time.time() - started:.0f} s; load average at start {load0:.1f}")
    print()
    report(runs, exported, counted is not None)
    if exported.get("on") == 0:
        PROBLEMS.add("tracing on: the sink received no export")
    if exported["off"] != 0:
        PROBLEMS.add("tracing off: the sink received exports")
    print()
    status = PROBLEMS.report()
    print(f"logs: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
