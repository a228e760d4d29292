"""The fairness benchmark (issue #27): live uploads beside bulk work and a noisy tenant.

Runs `image-service api` and one `image-service worker` on the embedded
defaults (SQLite in DATA_DIR, objects on disk, the queue table), as the
pipeline benchmark does (pipebench.Stack), and measures the latency of live
uploads (a 64x64 JPEG, POST /v1/images at a fixed open-loop rate; from the
upload's 202 to its job's event on the webhook, and beside it from the
upload's scheduled time and the event's queued_ms) under three conditions,
interleaved in each round so that the machine's moods hit all alike:

  1. alone: the live load, from --quiet-tenants tenants in turn, at --rate
     (default --load x the jobs/s measured first, closed loop);
  2. the same live load during `image-service reprocess --preset P
     --stale-only` of --images images: copies of a real job made by SQL
     (pipebench.prefill), each with a hard link to the real original so the
     worker can read it; before each run the copies' variant of P is deleted,
     so exactly those images are stale;
  3. the same live load while one more tenant sends --noisy-factor times the
     rate of each quiet tenant; the quiet tenants' latency is the figure.

Each round also runs the reprocess alone, and the report compares its rate
(jobs/s, from the command's start to the last job's finish) with the rate
during the live load. Every reprocess job must succeed (counted in the
database), every live job must announce its outcome; the script exits 1 if
any job is lost or fails. Targets (issue #27): p95 in 2 and 3 at most 10%
above 1 (the median over the rounds of each round's ratio); reprocess during
live load at >= 50% of its rate alone.

Run it through scripts/bench-fairness, which sets up the virtualenv and finds
the binary. The parts come from pipebench/ (Stack, Events, Api, the load
generators, prefill, report helpers) and tools/lib/harness.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from pipebench.client import Api  # noqa: E402
from pipebench.common import log, median  # noqa: E402
from pipebench.corpus import make_images  # noqa: E402
from pipebench.events import Events  # noqa: E402
from pipebench.load import PROBLEMS, closed_loop, open_loop, settle  # noqa: E402
from pipebench.prefill import id_text, prefill_sqlite  # noqa: E402
from pipebench.report import Rows, fmt, spread  # noqa: E402
from pipebench.stack import Stack, count_jobs  # noqa: E402

# Defaults that depend on --quick: (quick, full).
DEFAULTS = dict(images=(300, 10000), seconds=(3.0, 20.0), rounds=(1, 3), capacity_jobs=(100, 500))
CONDITIONS = ("alone", "tenants", "reprocess-live", "reprocess-alone")
FINAL = ("succeeded", "failed", "dead")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the image-service binary")
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI (< 2 minutes)")
    parser.add_argument("--images", type=int, help="images the reprocess runs over; default 10000, quick 300")
    parser.add_argument("--rate", type=float, help="live uploads/s; default --load x the measured capacity")
    parser.add_argument("--load", type=float, default=0.4, help="the live rate as a share of capacity (default 0.4)")
    parser.add_argument("--seconds", type=float, help="live load per alone and tenants window; default 20, quick 3")
    parser.add_argument("--rounds", type=int, help="rounds of the conditions; default 3, quick 1")
    parser.add_argument("--capacity-jobs", type=int, help="jobs of the capacity run; default 500, quick 100")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"which conditions each round runs, comma-separated (default {','.join(CONDITIONS)})")
    parser.add_argument("--preset", default="thumb", help="the preset reprocess makes (default thumb)")
    parser.add_argument("--quiet-tenants", type=int, default=4, help="tenants sharing the live load (default 4)")
    parser.add_argument("--noisy-factor", type=float, default=10, help="the noisy tenant's rate over a quiet one's")
    parser.add_argument("--bulk-image", help="the image the reprocessed copies are of (default: the live 64x64 JPEG)")
    parser.add_argument("--slots", type=int, help="WORKER_CONCURRENCY; default: the worker's own default")
    parser.add_argument("--timeout", type=float,
                        help="seconds one reprocess run may take before the run stops; default max(120, images / 10)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting for every image-service process (repeatable), e.g. LIVE_RESERVED_SLOTS=0")
    parser.add_argument("--out", help="scratch directory (kept); default a new temporary one")
    parser.add_argument("--build-label", help="how the binary was built, for the report (default: from its path)")
    args = parser.parse_args()
    for name, (quick, full) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if unknown := set(args.conditions) - set(CONDITIONS):
        parser.error(f"unknown conditions: {', '.join(sorted(unknown))}")
    if args.timeout is None:
        args.timeout = max(120.0, args.images / 10)
    # What pipebench.Stack reads besides these.
    args.postgres_url, args.keep = "", False
    return args


# --- the database, read beside the service -----------------------------------


def parse_time(value) -> float:
    """A timestamp column (text, as sea-orm writes it on SQLite, or ms) as epoch seconds."""
    if isinstance(value, (int, float)):
        return value / 1000
    text = re.sub(r"Z$", "+00:00", str(value).replace(" UTC", "+00:00"))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class Db:
    """Short read queries and the benchmark's own writes on the embedded database."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _run(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            with db:
                return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def max_rowid(self, table: str) -> int:
        return self._run(f'SELECT coalesce(max(rowid), 0) FROM "{table}"')[0][0]

    def unfinished(self) -> int:
        return self._run("SELECT count(*) FROM jobs WHERE status IN ('queued', 'processing')")[0][0]

    def statuses(self, preset: str, after: int) -> dict[str, int]:
        """Jobs of `preset` (reprocess jobs) added after job rowid `after`, by status."""
        rows = self._run("SELECT status, count(*) FROM jobs WHERE presets = ? AND rowid > ? GROUP BY status", (preset, after))
        return dict(rows)

    def finish_times(self, preset: str, after: int) -> list[float]:
        rows = self._run("SELECT finished_at FROM jobs WHERE presets = ? AND rowid > ? AND status = 'succeeded' "
                         "AND finished_at IS NOT NULL", (preset, after))
        return [parse_time(r[0]) for r in rows]

    def errors(self, preset: str, after: int) -> list[tuple]:
        return self._run("SELECT status, error_code, count(*) FROM jobs WHERE presets = ? AND rowid > ? "
                         "AND status <> 'succeeded' GROUP BY status, error_code", (preset, after))

    def depths(self) -> dict[str, int]:
        return dict(self._run("SELECT queue, count(*) FROM queue_messages GROUP BY queue"))

    def images_after(self, rowid: int) -> list[tuple]:
        return self._run("SELECT rowid, id FROM images WHERE rowid > ? ORDER BY rowid", (rowid,))

    def image_of_job(self, job: str) -> object:
        # The id column holds the UUID as text or as its 16 bytes.
        return self._run("SELECT image_id FROM jobs WHERE id IN (?, ?)", (job, uuid.UUID(job).bytes))[0][0]

    def make_stale(self, preset: str, first: int, last: int) -> int:
        """Deletes the variant rows of `preset` of the images with rowids first..last."""
        db = sqlite3.connect(self.path, timeout=60)
        try:
            with db:
                return db.execute("DELETE FROM variants WHERE preset = ? AND image_id IN "
                                  "(SELECT id FROM images WHERE rowid BETWEEN ? AND ?)", (preset, first, last)).rowcount
        finally:
            db.close()


# --- the run -------------------------------------------------------------------


class Bench:
    """The stack, its tenants, the copies to reprocess, and one method per condition."""

    def __init__(self, args: argparse.Namespace, work: Path, events: Events) -> None:
        self.args, self.work, self.events = args, work, events
        self.tiny, _, _ = make_images(work)
        self.bulk = Path(args.bulk_image).read_bytes() if args.bulk_image else self.tiny
        self.stack = Stack("embedded", args, work, events, None)
        self.db = Db(self.stack.data_dir / "image-service.db")
        help_text = subprocess.run([args.bin, "reprocess", "--help"], capture_output=True, text=True).stdout
        # The bulk lane came with `reprocess --wait`: the same binary tells which it is.
        self.bulk_lane = "--wait" in help_text
        self.quiet: list[Api] = []
        self.noisy: Api | None = None
        self.copies = (0, 0)  # the copies' rowids in `images`, first and last
        self.n_copies = 0
        self.prefilled: dict = {}

    def cli(self, argv: list[str]) -> str:
        return self.stack.run_cli(argv, check=True).stdout.strip()

    def tenant_key(self, name: str) -> Api:
        self.cli(["tenants", "create", name])
        # Every live upload is the same 64x64 JPEG; it must make a job each time.
        self.cli(["tenants", "dedup", name, "false"])
        key = self.cli(["keys", "create", "--name", name, "--scope", "client", "--tenant", name]).splitlines()[-1].strip()
        return Api(self.stack.api_port, key)

    def start(self) -> None:
        args, stack = self.args, self.stack
        self.quiet = [self.tenant_key(f"quiet-{i + 1}") for i in range(args.quiet_tenants)]
        self.noisy = self.tenant_key("noisy")
        stack.start_api()
        stack.start_workers(1, args.slots)
        log(f"worker: {stack.slots} slots; bulk lane: {'yes' if self.bulk_lane else 'no (one queue for everything)'}")
        # Every key's first request looks it up; then the connections are warm.
        open_loop(stack, self.events, "warm-up", self.tiny, 20, 1, api=[*self.quiet, self.noisy])

    def capacity(self) -> float:
        log(f"capacity: {self.args.capacity_jobs} live jobs, closed loop, 8 uploaders")
        return closed_loop(self.stack, self.events, "capacity", [self.tiny], self.args.capacity_jobs, 8, 600)["jobs_per_s"]

    def prefill(self) -> dict:
        """`--images` copies of a real job of the bulk image, each with its original."""
        args, stack = self.args, self.stack
        t0 = time.perf_counter()
        job = stack.api.upload(self.bulk)
        settle(stack, self.events, "template", [job], 120)
        template_image = id_text(self.db.image_of_job(job))
        self.wait_idle()
        before = self.db.max_rowid("images")
        log(f"pre-filling {args.images} images by SQL copies of job {job}")
        added = prefill_sqlite(self.db.path, count_jobs(stack) + args.images, template=job)
        copies = self.db.images_after(before)
        originals = stack.data_dir / "objects" / "originals"
        source = originals / template_image
        if not source.is_file():
            raise RuntimeError(f"the template's original is not at {source}")
        # A hard link per copy: the worker reads it as that image's original.
        for _, image in copies:
            os.link(source, originals / id_text(image))
        self.copies, self.n_copies = (copies[0][0], copies[-1][0]), len(copies)
        if self.copies[1] - self.copies[0] + 1 != len(copies):
            raise RuntimeError("the copies' rowids are not contiguous")
        return {"added": added, "images": len(copies), "seconds": time.perf_counter() - t0, "bytes": len(self.bulk)}

    def wait_idle(self, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while self.db.unfinished():
            if time.monotonic() > deadline:
                PROBLEMS.add(f"jobs still unfinished after {timeout:.0f} s of waiting for an idle pipeline")
                return
            time.sleep(0.2)
        time.sleep(0.5)  # acknowledgements and the last events

    def live(self, label: str, duration: float, stop: threading.Event | None = None) -> dict:
        return open_loop(self.stack, self.events, label, self.tiny, self.args.rate, duration, api=self.quiet, stop=stop,
                         settle_timeout=900)

    def alone(self, label: str) -> dict:
        self.wait_idle()
        return {"live": self.live(label, self.args.seconds)}

    def tenants(self, label: str) -> dict:
        self.wait_idle()
        args = self.args
        noisy_rate = args.noisy_factor * args.rate / args.quiet_tenants
        out: dict = {}
        noisy = threading.Thread(target=lambda: out.update(noisy=open_loop(
            self.stack, self.events, f"{label}-noisy", self.tiny, noisy_rate, args.seconds, api=self.noisy,
            settle_timeout=900)))
        noisy.start()
        out["live"] = self.live(f"{label}-quiet", args.seconds)
        noisy.join()
        return out

    def reprocess(self, label: str, with_live: bool) -> dict:
        """One `reprocess --stale-only` over the copies, with or without the live load;
        ends when the command has exited and every job it made has finished."""
        args, stack = self.args, self.stack
        self.wait_idle()
        stale = self.db.make_stale(args.preset, *self.copies)
        after = self.db.max_rowid("jobs")
        stop = threading.Event()
        out: dict = {"made_stale": stale}
        live = threading.Thread(target=lambda: out.update(live=self.live(f"{label}-live", args.timeout + 60, stop)))
        argv = [args.bin, "reprocess", "--preset", args.preset, "--stale-only", "--json"]
        if self.bulk_lane:
            argv.append("--wait")
        started = time.time()
        if with_live:
            live.start()
        with open(self.work / "reprocess.log", "ab") as cli_log:
            cli = subprocess.Popen(argv, env=stack.env, stdout=cli_log, stderr=subprocess.STDOUT)
        depths: dict[str, int] = {}
        deadline = time.monotonic() + args.timeout
        complete = True
        while True:
            for queue, depth in self.db.depths().items():
                depths[queue] = max(depths.get(queue, 0), depth)
            counts = self.db.statuses(args.preset, after)
            done = sum(counts.get(s, 0) for s in FINAL)
            if cli.poll() is not None and done == sum(counts.values()):
                break
            if time.monotonic() > deadline:
                PROBLEMS.add(f"{label}: {done} of {sum(counts.values())} reprocess jobs finished in {args.timeout:.0f} s "
                             f"(queue depths now {self.db.depths()}); the run stops here")
                if cli.poll() is None:
                    cli.kill()
                    cli.wait()
                complete = False
                break
            time.sleep(0.25)
        ended = time.time()
        stop.set()
        if with_live:
            live.join()
        if complete and cli.returncode != 0:
            PROBLEMS.add(f"{label}: `image-service reprocess` exited {cli.returncode} (see {self.work / 'reprocess.log'})")
        finished = self.db.finish_times(args.preset, after)
        succeeded = counts.get("succeeded", 0)
        if complete and succeeded != self.n_copies:
            PROBLEMS.add(f"{label}: {succeeded} of {self.n_copies} reprocess jobs succeeded; "
                         f"the others: {self.db.errors(args.preset, after)}")
        # A finished run's time ends at its last job; one cut short, at the cut.
        last = max(finished, default=ended) if complete else ended
        seconds = last - started
        out.update(complete=complete, jobs=sum(counts.values()), succeeded=succeeded, seconds=seconds,
                   command_seconds=ended - started,
                   jobs_per_s=succeeded / seconds if seconds > 0 else float("nan"), max_depths=depths)
        log(f"{label}: {succeeded} reprocess jobs in {seconds:.1f} s = {out['jobs_per_s']:.1f}/s; queue depths seen {depths}")
        return out

    def condition(self, name: str, rnd: int) -> dict:
        label = f"r{rnd + 1}-{name}"
        log(f"round {rnd + 1}: {name}")
        if name == "alone":
            return self.alone(label)
        if name == "tenants":
            return self.tenants(label)
        return self.reprocess(label, with_live=name == "reprocess-live")

    def close(self) -> None:
        self.stack.close()


# --- the report ------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else float("nan")


def report(rounds: list[dict], args, capacity: float) -> str:
    """The table. A round cut short (a reprocess that did not finish) counts
    where it has figures; each ratio pairs two figures of one round."""
    row = Rows(words=("PASS", "MISS"))
    b = "embedded"

    def paired(a: str, b_: str, get) -> list[tuple[float, float]]:
        return [(get(r[a]), get(r[b_])) for r in rounds if a in r and b_ in r]

    def ratios_row(figure: str, pairs: list[tuple[float, float]], digits_pct: bool, target: str, ok) -> None:
        ratios = [ratio(x, y) for x, y in pairs]
        m = median(ratios)
        def shown(x: float) -> str:
            return "n/a" if x != x else f"{fmt(100 * x, 0)}%" if digits_pct else f"{fmt(x, 2)}x"

        of_medians = ratio(median([x for x, _ in pairs]), median([y for _, y in pairs]))
        row(b, figure, shown(m), "rounds " + " / ".join(shown(x) for x in ratios) + f"; of medians {shown(of_medians)}",
            target, None if m != m else ok(m))

    row(b, "live rate (uploads/s)", fmt(args.rate, 1),
        f"{100 * args.rate / capacity:.0f}% of the {fmt(capacity, 0)}/s measured" if capacity == capacity else "--rate")
    def live(c: dict, key: str) -> float:
        return c["live"][key]

    p95 = lambda c: live(c, "accepted_p95_ms")  # noqa: E731
    for number, name, title in ((1, "alone", "alone"), (2, "reprocess-live", f"during reprocess of {args.images}"),
                                (3, "tenants", f"quiet tenants, 1 noisy at {args.noisy_factor:g}x")):
        runs = [r[name] for r in rounds if name in r]
        row(b, f"{number} {title}: live p50 / p95 ms",
            f"{fmt(median([live(c, 'accepted_p50_ms') for c in runs]))} / {fmt(median([p95(c) for c in runs]))}",
            f"p95 {' / '.join(fmt(p95(c)) for c in runs)}; queued p95 {fmt(median([live(c, 'queued_p95_ms') for c in runs]))}; "
            f"from the scheduled send p95 {fmt(median([live(c, 'p95_ms') for c in runs]))}; "
            f"{sum(live(c, 'sent') for c in runs)} uploads")
        if number > 1:
            ratios_row(f"{number} vs 1: p95 ratio", paired(name, "alone", p95), False, "<= 1.10x", lambda m: m <= 1.10)
    noisy = [r["tenants"]["noisy"] for r in rounds if "tenants" in r]
    row(b, "3: the noisy tenant's p50 / p95 ms", f"{fmt(median([n['accepted_p50_ms'] for n in noisy]))} / "
        f"{fmt(median([n['accepted_p95_ms'] for n in noisy]))}",
        f"queued p95 {fmt(median([n['queued_p95_ms'] for n in noisy]))}; "
        f"sent at {fmt(median([n['achieved_rate'] for n in noisy]), 0)}/s of {fmt(args.noisy_factor * args.rate / args.quiet_tenants, 0)}")
    for name, title in (("reprocess-alone", "reprocess alone (jobs/s)"), ("reprocess-live", "reprocess during live load (jobs/s)")):
        runs = [r[name] for r in rounds if name in r]
        rates = [c["jobs_per_s"] for c in runs]
        cut = [c for c in runs if not c["complete"]]
        detail = spread(rates, 1) + "".join(
            f" UNFINISHED: {c['succeeded']} of {args.images} done in {c['seconds']:.0f} s" for c in cut)
        row(b, title, fmt(median(rates), 1), detail.strip())
    rate = lambda c: c["jobs_per_s"]  # noqa: E731
    ratios_row("reprocess during live / alone", paired("reprocess-live", "reprocess-alone", rate), True, ">= 50%",
               lambda m: m >= 0.5)
    runs = [r[k] for r in rounds for k in ("reprocess-alone", "reprocess-live") if k in r]
    row(b, "reprocess jobs succeeded", f"{sum(x['succeeded'] for x in runs)} of {len(runs) * args.images}",
        f"{len(runs)} runs; queue depths seen: " + ", ".join(
            f"{q} {max(x['max_depths'].get(q, 0) for x in runs)}" for q in sorted({q for x in runs for q in x["max_depths"]})))
    return row.table()


def header(bench: Bench, args, version: str, seconds: float, load0: float) -> str:
    build = args.build_label or next(
        (f"{kind} build" for kind in ("debug", "release") if f"/{kind}/" in str(Path(args.bin).resolve())), "build unknown")
    reserved = next((e.split("=", 1)[1] for e in args.env if e.startswith("LIVE_RESERVED_SLOTS=")), "default")
    return "\n".join([
        f"Fairness benchmark (issue #27): {version}, {build}, bulk lane: {'yes' if bench.bulk_lane else 'no'}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}, load average {load0:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end, {'quick' if args.quick else 'full'} run in {seconds:.0f} s",
        f"embedded defaults; api + 1 worker ({bench.stack.slots} slots, LIVE_RESERVED_SLOTS {reserved}); live: 64x64 JPEG "
        f"from {args.quiet_tenants} tenants in turn, open loop; {args.rounds} round(s) of {', '.join(args.conditions)} "
        f"(order rotated per round); alone and tenants windows {args.seconds:g} s; reprocess --preset {args.preset} "
        f"--stale-only over {args.images} copies of a {bench.prefilled['bytes']} B image",
    ] + ([f"extra settings: {' '.join(args.env)}"] if args.env else []))


def main() -> int:
    args = parse_args()
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    work.mkdir(parents=True, exist_ok=True)
    events = Events()
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"binary {args.bin} ({version}); work dir {work}")
    started, load0 = time.time(), os.getloadavg()[0]
    bench = Bench(args, work, events)
    results: dict = {"rounds": []}
    try:
        bench.start()
        capacity = bench.capacity()
        if args.rate is None:
            args.rate = max(1.0, args.load * capacity)
        log(f"capacity {capacity:.1f} jobs/s; live rate {args.rate:.1f}/s")
        bench.prefilled = bench.prefill()
        results.update(capacity=capacity, rate=args.rate, prefill=bench.prefilled, bulk_lane=bench.bulk_lane)
        for rnd in range(args.rounds):
            chosen = [c for c in CONDITIONS if c in args.conditions]
            order = chosen[rnd % len(chosen):] + chosen[:rnd % len(chosen)]
            results["rounds"].append({})
            for name in order:
                got = results["rounds"][-1][name] = bench.condition(name, rnd)
                (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
                if not got.get("complete", True):
                    break
            else:
                continue
            break  # a reprocess that did not finish leaves work behind: nothing after it is comparable
        else:
            bench.wait_idle()
    finally:
        bench.close()
        events.close()
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))

    print()
    print(header(bench, args, version, time.time() - started, load0))
    print()
    print(report(results["rounds"], args, capacity))
    print()
    status = PROBLEMS.report()
    print(f"logs and results.json: {work}")
    return status


if __name__ == "__main__":
    sys.exit(main())
