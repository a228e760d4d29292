"""One backend's run: the tiny pairs, latency, photos, and memory phases."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .common import LARGE, log, median, status_kib
from .emulator import Moto, emulator_burst
from .engine import Engine
from .events import Events
from .load import burst_memory, closed_loop, open_loop, sequential_latency
from .prefill import prefill
from .stack import Stack, count_jobs


def start_tiny(stack: Stack, events: Events, args, tiny: bytes) -> None:
    """Starts the API and one worker as the tiny runs use them, and warms them up.

    The tiny runs measure the worker as it is deployed: its default
    WORKER_CONCURRENCY unless --tiny-slots sets one."""
    stack.start_api()
    stack.start_workers(1, args.tiny_slots)
    closed_loop(stack, events, "warm-up", [tiny], 10, 2, 60)


@dataclass
class Inputs:
    """What every backend's run is given."""

    args: argparse.Namespace
    work: Path
    events: Events
    engine: Engine
    photos: list[Path]
    tiny: bytes
    big: bytes
    huge: bytes


def run_backend(backend: str, inputs: Inputs) -> dict:
    """Every phase on one backend set; returns its figures (the report's input)."""
    args = inputs.args
    out: dict = {"backend": backend}
    moto = Moto(args.moto_server, inputs.work) if backend == "aws" else None
    try:
        stack = Stack(backend, args, inputs.work, inputs.events, moto)
    except BaseException:
        if moto:
            moto.close()
        raise
    out["auth"] = "api key (Bearer)" if stack.key else "none (`keys create` unavailable)"
    try:
        tiny_pairs(stack, inputs, out)
        latency(stack, inputs, out)
        photo_layouts(stack, inputs, out)
        api_memory(stack, inputs, out)
        if moto:
            log(f"{backend}: timing raw emulator calls at the end")
            out["emulator_raw"] = emulator_burst(moto, 50 if args.quick else 200)
    finally:
        stack.close()
        if moto:
            moto.close()
    return out


def tiny_pairs(stack: Stack, inputs: Inputs, out: dict) -> None:
    """2. overhead on tiny images: fresh tables against full ones, as interleaved pairs of
    runs so that the machine's moods hit both alike. Each fresh run has a new database;
    the full one is filled once."""
    args, events, tiny, backend, moto = inputs.args, inputs.events, inputs.tiny, stack.backend, stack.moto
    stack.use_database("full")
    start_tiny(stack, events, args, tiny)
    if moto:
        log(f"{backend}: timing raw emulator calls on a fresh emulator")
        out["emulator_raw_start"] = emulator_burst(moto, 50 if args.quick else 200)
    out["prefill"] = prefill(stack, events, args, tiny)
    out["tiny_pairs"] = []
    # The emulator runs tiny jobs at a few per second: one pair there.
    tiny_rounds = args.tiny_rounds or (1 if args.quick or backend == "aws" else 3)
    for rnd in range(tiny_rounds):
        pair = {}
        for kind in ("fresh", "full") if rnd % 2 == 0 else ("full", "fresh"):
            stack.use_database(f"fresh-{rnd}" if kind == "fresh" else "full")
            start_tiny(stack, events, args, tiny)
            rows = count_jobs(stack)
            log(f"{backend}: tiny round {rnd + 1}/{tiny_rounds}: {args.tiny_jobs} jobs on {kind} tables ({rows} jobs)")
            if moto:
                # The emulator slows as it holds more objects: every run
                # starts with it as empty as the first.
                stack.clear_objects()
            pair[kind] = closed_loop(stack, events, f"tiny-{kind}", [tiny], args.tiny_jobs, args.upload_concurrency, 300)
            pair[kind]["rows_before"] = rows
        out["tiny_pairs"].append(pair)
    out["tiny_slots"] = stack.slots
    out["rows_after_prefill"] = out["tiny_pairs"][0]["full"]["rows_before"]
    # The run of each kind with the median rate stands for it in the CPU rows.
    for kind, key in (("fresh", "tiny_first"), ("full", "tiny_full")):
        runs = sorted((p[kind] for p in out["tiny_pairs"]), key=lambda r: r["jobs_per_s"])
        out[key] = runs[len(runs) // 2]


def latency_photo(photos: list[Path]) -> Path:
    """The 20 MP photo of the corpus (the smoke's one photo without it)."""
    return photos[LARGE.index("kleiber")] if len(photos) == len(LARGE) else photos[0]


def latency(stack: Stack, inputs: Inputs, out: dict) -> None:
    """3. latency on tiny images, one at a time and open-loop, and of one photo."""
    args, events, tiny, backend = inputs.args, inputs.events, inputs.tiny, stack.backend
    stack.use_database("main")
    start_tiny(stack, events, args, tiny)
    log(f"{backend}: latency, one job at a time ({args.latency_jobs} jobs)")
    out["latency_seq"] = sequential_latency(stack, events, "latency-seq", tiny, args.latency_jobs)
    rate = 0.8 * median([p["fresh"]["jobs_per_s"] for p in out["tiny_pairs"]])
    if not rate > 0:
        rate = 1.0
    log(f"{backend}: latency, open loop at {rate:.0f} jobs/s for {args.open_loop_seconds:.0f} s")
    out["latency_open"] = open_loop(stack, events, "latency-open", tiny, rate, args.open_loop_seconds)
    photo = latency_photo(inputs.photos)
    log(f"{backend}: latency of one 20 MP photo, one job at a time ({args.photo_latency_jobs} jobs)")
    out["latency_photo"] = sequential_latency(stack, events, "latency-photo", photo.read_bytes(), args.photo_latency_jobs)


def photo_layouts(stack: Stack, inputs: Inputs, out: dict) -> None:
    """1 and 4. photos: engine alone and three worker layouts, interleaved per round; then
    the engine's time for the latency images."""
    args, photos, backend = inputs.args, inputs.photos, stack.backend
    bodies = [p.read_bytes() for p in photos]
    files = [photos[i % len(photos)] for i in range(args.photo_jobs)]
    layouts = [("1x2", 1, 2), ("1x1", 1, 1), ("2x1", 2, 1)]
    out["photos"] = {name: [] for name, _, _ in layouts}
    out["engine_c2"] = []
    out["worker_hwm_kib"] = {name: 0 for name, _, _ in layouts}
    for rnd in range(args.rounds):
        log(f"{backend}: photos round {rnd + 1}/{args.rounds}: engine alone, {args.photo_jobs} images at concurrency 2")
        out["engine_c2"].append(inputs.engine.throughput(files, 2))
        for name, procs, conc in layouts:
            stack.start_workers(procs, conc)
            log(f"{backend}: photos round {rnd + 1}: {procs} worker process(es) x {conc} slot(s), {args.photo_jobs} jobs")
            result = closed_loop(stack, inputs.events, f"photos-{name}", bodies, args.photo_jobs, 4, 600 + 10 * args.photo_jobs)
            result["worker_hwm_kib"] = [status_kib(p.pid, "VmHWM") for p in stack.workers]
            out["worker_hwm_kib"][name] = max([out["worker_hwm_kib"][name], *result["worker_hwm_kib"]])
            out["photos"][name].append(result)
            stack.stop_workers()
            stack.clear_objects()

    # engine time for the latency images
    q = args.quick
    out["engine_tiny_ms"] = 1000 * inputs.engine.seconds_per_image(inputs.work / "tiny.jpg", 200 if not q else 50)
    out["engine_photo_ms"] = 1000 * inputs.engine.seconds_per_image(latency_photo(photos), 3 if not q else 1)


def api_memory(stack: Stack, inputs: Inputs, out: dict) -> None:
    """5. API memory: small uploads, then 2 MB and 8 MB uploads, each on a fresh API
    process, no worker."""
    args, tiny, big, huge, backend = inputs.args, inputs.tiny, inputs.big, inputs.huge, stack.backend
    log(f"{backend}: API memory: {args.burst} small uploads, {args.burst_concurrency} at a time")
    out["api_small"] = burst_memory(stack, tiny, tiny, args.burst, args.burst_concurrency)
    log(f"{backend}: API memory: {args.burst} uploads of {len(big) / 1e6:.1f} MB, {args.burst_concurrency} at a time")
    out["api_big"] = burst_memory(stack, big, tiny, args.burst, args.burst_concurrency)
    # Peak memory follows the uploads in flight, not their count: fewer 8 MB ones do.
    huge_n = max(args.burst_concurrency, args.burst // 4)
    log(f"{backend}: API memory: {huge_n} uploads of {len(huge) / 1e6:.1f} MB, {args.burst_concurrency} at a time")
    out["api_huge"] = burst_memory(stack, huge, tiny, huge_n, args.burst_concurrency)
