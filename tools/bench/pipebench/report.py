"""The report: one table of figures, targets and verdicts."""

from __future__ import annotations

import os
import time

from .common import MIB, median
from .engine import Engine


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:.{digits}f}"


def spread(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if v == v]
    if len(values) < 2:
        return ""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def verdict(ok, words: tuple[str, str] = ("met", "MISSED")) -> str:
    if ok is None:
        return "n/a"
    return words[0] if ok else words[1]


class Rows:
    """The table's rows: backend, figure, value, runs / detail, target, verdict
    (`words`: what a target met and a target missed read as)."""

    def __init__(self, words: tuple[str, str] = ("met", "MISSED")) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []
        self.words = words

    def __call__(self, backend, figure, value, runs="", target="", ok=None) -> None:
        self.rows.append((backend, figure, value, runs, target, verdict(ok, self.words) if target else ""))

    def table(self) -> str:
        head = ("backend", "figure", "value (median)", "runs / detail", "target", "met?" if self.words[0] == "met" else "/".join(self.words))
        widths = [max(len(str(x[i])) for x in [head, *self.rows]) for i in range(len(head))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
        for r_ in self.rows:
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(r_, widths)).rstrip())
        return "\n".join(lines)


def photo_medians(r: dict) -> dict[str, float]:
    return {name: median([x["jobs_per_s"] for x in r["photos"][name]]) for name in r["photos"]}


def photo_rows(row: Rows, r: dict) -> None:
    b, p, med = r["backend"], r["photos"], photo_medians(r)
    eng = median(r["engine_c2"])
    row(b, "photos: pipeline jobs/s, 1 worker x 2 slots", fmt(med["1x2"], 2), spread([x["jobs_per_s"] for x in p["1x2"]]))
    row(b, "photos: engine alone img/s, concurrency 2", fmt(eng, 2), spread(r["engine_c2"]))
    ratio = med["1x2"] / eng if eng == eng and eng > 0 else float("nan")
    row(b, "photos: pipeline / engine", fmt(100 * ratio, 0) + "%", "", ">= 90%", None if ratio != ratio else ratio >= 0.9)
    for name in ("1x2", "1x1", "2x1"):
        cpu = p[name][-1]["cpu_ms_per_job"]
        emu = f" / {fmt(cpu['emulator'], 0)}" if "emulator" in cpu else ""
        row(b, f"photos {name}: CPU ms/job api / worker(s){' / emulator' if emu else ''}",
            f"{fmt(cpu['api'], 1)} / {fmt(cpu['worker'], 0)}{emu}", f"harness {fmt(cpu['harness'], 1)}")


def tiny_rows(row: Rows, r: dict) -> None:
    b = r["backend"]
    t1, t2, pairs = r["tiny_first"], r["tiny_full"], r["tiny_pairs"]
    fresh = [x["fresh"]["jobs_per_s"] for x in pairs]
    full = [x["full"]["jobs_per_s"] for x in pairs]
    row(b, f"tiny: jobs/s, first {t1['jobs']} jobs", fmt(median(fresh), 0), " / ".join(fmt(x, 0) for x in fresh),
        ">= 300", median(fresh) >= 300)
    row(b, f"tiny: jobs/s, {t2['jobs']} jobs at {r['rows_after_prefill']} rows", fmt(median(full), 0),
        " / ".join(fmt(x, 0) for x in full), ">= 300", median(full) >= 300)
    # Each pair ran back to back, so its ratio is the comparison; the
    # median of the ratios is the figure.
    changes = [x["full"]["jobs_per_s"] / x["fresh"]["jobs_per_s"] - 1 for x in pairs]
    change = median(changes)
    row(b, "tiny: jobs/s change, full vs fresh tables", f"{100 * change:+.0f}%",
        "pairs " + " / ".join(f"{100 * c:+.0f}%" for c in changes), "within +-10%", abs(change) <= 0.10)
    for label, t in (("fresh", t1), ("full", t2)):
        cpu = t["cpu_ms_per_job"]
        extra = f" / {fmt(cpu['emulator'], 2)}" if "emulator" in cpu else ""
        row(b, f"tiny ({label}): CPU ms/job api / worker{' / emulator' if extra else ''}",
            f"{fmt(cpu['api'], 2)} / {fmt(cpu['worker'], 2)}{extra}", f"harness {fmt(cpu['harness'], 2)}")
    row(b, "tiny: rows pre-filled", f"{r['prefill']['added']} by {r['prefill']['how']}", f"{r['prefill']['seconds']:.1f} s")


def latency_rows(row: Rows, r: dict) -> None:
    b = r["backend"]
    ls, lo, lp = r["latency_seq"], r["latency_open"], r["latency_photo"]
    et, ep = r["engine_tiny_ms"], r["engine_photo_ms"]
    row(b, "latency tiny, 1 at a time: p50 / p99 ms", f"{fmt(ls['p50_ms'])} / {fmt(ls['p99_ms'])}",
        f"queued {fmt(ls['queued_p50_ms'], 0)} + processing {fmt(ls['processing_p50_ms'], 0)}",
        f"p50 <= engine {fmt(et, 1)} + 50", None if et != et else ls["p50_ms"] <= et + 50)
    row(b, f"latency tiny, open loop {fmt(lo['rate'], 0)}/s (80%): p50 / p99 ms", f"{fmt(lo['p50_ms'])} / {fmt(lo['p99_ms'])}",
        f"sent {fmt(lo['achieved_rate'], 0)}/s, {lo['late_sends']} late")
    row(b, "latency 20 MP photo, 1 at a time: p50 / p99 ms", f"{fmt(lp['p50_ms'], 0)} / {fmt(lp['p99_ms'], 0)}",
        f"queued {fmt(lp['queued_p50_ms'], 0)} + processing {fmt(lp['processing_p50_ms'], 0)}",
        f"p50 <= engine {fmt(ep, 0)} + 50", None if ep != ep else lp["p50_ms"] <= ep + 50)


def scaling_rows(row: Rows, r: dict) -> None:
    b, med = r["backend"], photo_medians(r)
    scale = med["2x1"] / med["1x1"] if med["1x1"] > 0 else float("nan")
    row(b, "scaling: jobs/s 1x1 / 2x1 / 1x2", f"{fmt(med['1x1'], 2)} / {fmt(med['2x1'], 2)} / {fmt(med['1x2'], 2)}",
        f"1x2/1x1 {fmt(med['1x2'] / med['1x1'], 2)}x")
    row(b, "scaling: 2 worker processes vs 1", f"{fmt(scale, 2)}x", "", ">= 1.8x", scale >= 1.8)


def memory_rows(row: Rows, r: dict, budget: tuple[float, str]) -> None:
    b = r["backend"]
    limit = 2 * budget[0] + 64
    hwm = r["worker_hwm_kib"]["1x2"] / 1024
    row(b, "memory: worker VmHWM, 2 slots (MiB)", fmt(hwm, 0), f"1 slot: {fmt(r['worker_hwm_kib']['1x1'] / 1024, 0)}",
        f"<= 2 x {budget[0]:.0f} + 64 = {limit:.0f}", hwm <= limit)
    small, big, huge = r["api_small"], r["api_big"], r["api_huge"]
    mib = {k: x["vmhwm_kib"] / 1024 for k, x in (("small", small), ("big", big), ("huge", huge))}
    conc = big["concurrency"]
    # Whole bodies held in memory would add all the bytes in flight; a
    # quarter of them is the line. Flat in upload size: 8 MB uploads over
    # 2 MB ones; the brief's comparison: 2 MB uploads over small ones.
    allow_big = conc * (big["bytes"] - small["bytes"]) / MIB / 4
    allow_huge = conc * (huge["bytes"] - big["bytes"]) / MIB / 4
    growth_big, growth_huge = mib["big"] - mib["small"], mib["huge"] - mib["big"]
    row(b, "memory: API VmHWM, bursts of small / 2 MB / 8 MB uploads (MiB)",
        f"{fmt(mib['small'], 0)} / {fmt(mib['big'], 0)} / {fmt(mib['huge'], 0)}",
        f"{small['uploads']} / {big['uploads']} / {huge['uploads']} uploads, {conc} at a time")
    row(b, "memory: API growth, 2 MB burst over small", f"{growth_big:+.1f} MiB",
        f"{growth_big / conc:.2f} MiB per upload in flight", f"< {allow_big:.0f} MiB (1/4 in flight)", growth_big < allow_big)
    row(b, "memory: API growth, 8 MB burst over 2 MB", f"{growth_huge:+.1f} MiB",
        "flat in upload size?", f"< {allow_huge:.0f} MiB (1/4 in flight)", growth_huge < allow_huge)


def emulator_rows(row: Rows, r: dict) -> None:
    b = r["backend"]
    for key, when in (("emulator_raw_start", "fresh"), ("emulator_raw", "at the end")):
        if key in r:
            raw = r[key]
            row(b, f"emulator ({when}): raw calls/s SQS send / receive / delete / S3 put",
                " / ".join(fmt(raw[k], 0) for k in ("sqs_send", "sqs_receive", "sqs_delete", "s3_put_4k")),
                "1 boto3 client, 1 call at a time")
    if "emulator_raw" in r:
        for label, t in (("tiny (fresh)", r["tiny_first"]), ("tiny (full)", r["tiny_full"]), ("photos 1x2", r["photos"]["1x2"][-1])):
            reqs = t.get("emulator_requests", 0)
            cpu = t["cpu_ms_per_job"]
            share = cpu["emulator"] / (cpu["emulator"] + cpu["api"] + cpu["worker"])
            row(b, f"emulator: requests/job, {label}", f"{reqs / max(t['events'], 1):.1f}",
                f"{reqs / t['seconds']:.0f} req/s; {100 * share:.0f}% of service CPU")


def report(results: list[dict], args, budget: tuple[float, str], engine: Engine) -> str:
    row = Rows()
    for r in results:
        photo_rows(row, r)
        tiny_rows(row, r)
        latency_rows(row, r)
        scaling_rows(row, r)
        memory_rows(row, r, budget)
        emulator_rows(row, r)
    return row.table()


def header(results: list[dict], args, version: str, build: str, seconds: float, engine: Engine,
           budget: tuple[float, str]) -> str:
    """The lines above the table: what ran, where, how long."""
    lines = [
        f"Pipeline benchmark (issue #10): {version}, {build}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, {'quick' if args.quick else 'full'} run "
        f"in {seconds:.0f} s",
        f"api + worker as separate processes; photos: {args.photo_jobs} jobs over the 8 large corpus photos, "
        f"{args.rounds} round(s), default presets; tiny: 64x64 JPEG, {args.tiny_jobs} jobs, {args.upload_concurrency} uploaders, "
        f"pairs of fresh and full runs: " + ", ".join(f"{r['backend']} {len(r['tiny_pairs'])}" for r in results) + "; "
        "worker slots: " + ", ".join(f"{r['backend']} {r.get('tiny_slots')}" for r in results),
        f"engine alone: {engine.note}",
    ]
    if args.env:
        lines.append(f"extra settings: {' '.join(args.env)}")
    lines.append(f"per-job memory budget: {budget[0]:.0f} MiB ({budget[1]}); auth: "
                 + ", ".join(f"{r['backend']} {r['auth']}" for r in results))
    return "\n".join(lines)
