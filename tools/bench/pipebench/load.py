"""The load: closed-loop and open-loop uploads, one-at-a-time latency, API memory
bursts; and the run's problems (jobs lost, failed or never announced)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from .client import Api
from .common import cpu_seconds, log, median, percentile, status_kib
from .events import Events
from .stack import Stack


class Problems:
    """Jobs that were lost, failed, or never announced, over the whole run."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        log("PROBLEM: " + text)
        self.items.append(text)

    def report(self) -> int:
        """Prints how many there were, and each; returns the run's exit status."""
        n = len(self.items)
        print(f"problems: {n}" + ("" if not n else "\n  " + "\n  ".join(self.items)))
        return 1 if n else 0


PROBLEMS = Problems()


def settle(stack: Stack, events: Events, label: str, jobs: list[str], timeout: float,
           owner: Callable[[str], Api] | None = None) -> dict:
    """Waits for every job's event; checks the ones without one against the API.

    `owner` names the client whose key may read a job (another tenant's job
    reads as missing); by default the stack's own."""
    got = events.wait(jobs, timeout)
    failed = [j for j, (_, status, _) in got.items() if status != "succeeded"]
    missing = [j for j in jobs if j not in got]
    lookup = (lambda j: owner(j).job(j)) if owner else stack.api.job
    lost, silent = [], []
    for j in missing:
        status = lookup(j).get("status")
        (silent if status in ("succeeded", "failed", "dead") else lost).append((j, status))
    for j in failed[:5]:
        detail = lookup(j)
        PROBLEMS.add(f"{stack.backend}/{label}: job {j} ended {detail.get('status')}: {detail.get('error')}")
    if len(failed) > 5:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(failed) - 5} more jobs failed")
    if lost:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(lost)} of {len(jobs)} jobs unfinished after {timeout:.0f} s, e.g. {lost[:3]}")
    if silent:
        PROBLEMS.add(f"{stack.backend}/{label}: {len(silent)} finished jobs sent no event, e.g. {silent[:3]}")
    return got


def closed_loop(stack: Stack, events: Events, label: str, bodies: list[bytes], n: int, concurrency: int, timeout: float) -> dict:
    """Submits n jobs as fast as `concurrency` uploaders can; measures until the last event."""
    pids = stack.pids()
    cpu0 = {role: sum(cpu_seconds(p) for p in ps) for role, ps in pids.items()}
    moto0 = stack.moto.requests() if stack.moto else 0
    jobs: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def uploader() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                job = stack.api.upload(bodies[i % len(bodies)])
            except Exception as err:  # noqa: BLE001
                with lock:
                    errors.append(str(err))
                continue
            with lock:
                jobs.append(job)

    started = time.perf_counter()
    threads = [threading.Thread(target=uploader) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    uploaded = time.perf_counter()
    for err in errors[:3]:
        PROBLEMS.add(f"{stack.backend}/{label}: upload failed: {err}")
    got = settle(stack, events, label, jobs, timeout)
    last = max((t for t, _, _ in got.values()), default=uploaded)
    seconds = last - started
    cpu1 = {role: sum(cpu_seconds(p) for p in ps) for role, ps in pids.items()}
    done = len(got)
    result = {
        "label": label,
        "jobs": n,
        "events": done,
        "seconds": seconds,
        "upload_seconds": uploaded - started,
        "jobs_per_s": done / seconds if seconds > 0 else float("nan"),
        "cpu_ms_per_job": {role: 1000 * (cpu1[role] - cpu0[role]) / max(done, 1) for role in pids},
    }
    if stack.moto:
        result["emulator_requests"] = stack.moto.requests() - moto0
    return result


def sequential_latency(stack: Stack, events: Events, label: str, body: bytes, n: int) -> dict:
    """One job at a time: upload, wait for its event, next."""
    latencies, queued, processing = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        job = stack.api.upload(body)
        got = events.wait([job], 120)
        if job not in got:
            settle(stack, events, label, [job], 0)
            continue
        arrived, status, timings = got[job]
        if status != "succeeded":
            settle(stack, events, label, [job], 0)
        latencies.append(1000 * (arrived - t0))
        queued.append(timings.get("queued_ms", float("nan")))
        processing.append(timings.get("processing_ms", float("nan")))
    return {
        "label": label,
        "jobs": n,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "queued_p50_ms": median(queued),
        "processing_p50_ms": median(processing),
    }


def open_loop(stack: Stack, events: Events, label: str, body: bytes, rate: float, duration: float,
              api: Api | Sequence[Api] | None = None, stop: threading.Event | None = None,
              settle_timeout: float = 120, senders: int = 64) -> dict:
    """Arrivals at a fixed rate, whatever the answers; latency from each scheduled time
    (`p50_ms`...), and from each upload's answer (`accepted_p50_ms`...: the queue,
    the job and the event, without the upload itself).

    `api`: the client (or clients, taken in turn, one arrival each: several
    tenants' keys) that uploads; by default the stack's own. `stop`, when
    set, ends the arrivals before `duration` is up."""
    clients = [stack.api] if api is None else [api] if isinstance(api, Api) else list(api)
    n = max(1, int(rate * duration))
    start = time.perf_counter() + 0.2
    schedule = [start + i / rate for i in range(n)]
    sent: list[tuple[str, float]] = []
    accepted: dict[str, float] = {}
    owners: dict[str, Api] = {}
    late: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def sender() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None or (stop is not None and stop.is_set()):
                return
            wait = schedule[i] - time.perf_counter()
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        return
                else:
                    time.sleep(wait)
            else:
                with lock:
                    late.append(-wait)
            client = clients[i % len(clients)]
            try:
                job = client.upload(body)
            except Exception as err:  # noqa: BLE001
                PROBLEMS.add(f"{stack.backend}/{label}: upload failed: {err}")
                continue
            answered = time.perf_counter()
            with lock:
                sent.append((job, schedule[i]))
                accepted[job] = answered
                owners[job] = client

    threads = [threading.Thread(target=sender) for _ in range(min(senders, n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sending = time.perf_counter() - start
    got = settle(stack, events, label, [j for j, _ in sent], settle_timeout, owner=owners.__getitem__)
    latencies = [1000 * (got[j][0] - t) for j, t in sent if j in got]
    from_answer = [1000 * (got[j][0] - accepted[j]) for j, _ in sent if j in got]
    queued = [got[j][2]["queued_ms"] for j, _ in sent if j in got and "queued_ms" in got[j][2]]
    return {
        "label": label,
        "rate": rate,
        "jobs": n,
        "sent": len(sent),
        "achieved_rate": len(sent) / sending if sending > 0 else float("nan"),
        "late_sends": len(late),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "accepted_p50_ms": percentile(from_answer, 50),
        "accepted_p95_ms": percentile(from_answer, 95),
        "accepted_p99_ms": percentile(from_answer, 99),
        "queued_p50_ms": percentile(queued, 50),
        "queued_p95_ms": percentile(queued, 95),
    }


def burst_memory(stack: Stack, body: bytes, warm: bytes, n: int, concurrency: int) -> dict:
    """A fresh API process takes n uploads of `body`, `concurrency` at a time."""
    stack.start_api()
    pid = stack.api_proc.pid
    for _ in range(3):
        stack.api.upload(warm)  # connections, pools and the allocator warmed alike for both bursts
    baseline = status_kib(pid, "VmRSS")
    counter = iter(range(n))
    lock = threading.Lock()
    peak_sample = [0]

    def uploader() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                stack.api.upload(body)
            except Exception as err:  # noqa: BLE001
                PROBLEMS.add(f"{stack.backend}/memory: upload failed: {err}")

    def sampler(stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            peak_sample[0] = max(peak_sample[0], status_kib(pid, "VmRSS"))
            time.sleep(0.01)

    stop_event = threading.Event()
    threading.Thread(target=sampler, args=(stop_event,), daemon=True).start()
    started = time.perf_counter()
    threads = [threading.Thread(target=uploader) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    stop_event.set()
    return {
        "bytes": len(body),
        "uploads": n,
        "concurrency": concurrency,
        "seconds": seconds,
        "baseline_rss_kib": baseline,
        "vmhwm_kib": status_kib(pid, "VmHWM"),
        "sampled_peak_rss_kib": peak_sample[0],
    }
