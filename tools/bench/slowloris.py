"""Slow clients against the API (issue #26): honest request latency with and without an attack.

For each configuration, `image-service run` on the embedded defaults, then:
1. honest: --requests GET /v1/jobs with a key, each on a new connection, one at a time;
2. attack: --slow attackers, each holding a connection that sends half a request head and then
   one header line every --trickle seconds, never finishing it, and opening a new one whenever
   the server closes it; the same honest requests run meanwhile. Each slow connection's
   lifetime is recorded: how long until the server closed it.

Configurations: `timeout` (HTTP_HEADER_READ_TIMEOUT_SECS=--timeout, the shipped behaviour) and
`no-timeout` (the timeout pushed past the run, as before the fix), both with the same
HTTP_MAX_CONNECTIONS (--cap), so the second shows what holding connections open costs.

    python tools/bench/slowloris.py --bin $CARGO_TARGET_DIR/debug/image-service
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "lib"))

from harness import procs  # noqa: E402
from harness.ports import free_port  # noqa: E402
from pipebench.common import percentile  # noqa: E402

KEY = "slowloris-bench-admin-key"


def honest(port: int, n: int, timeout: float, deadline: float | None = None) -> list[float]:
    """Latencies in ms; a request that gets no answer within `timeout` counts as `timeout`.
    Stops early at `deadline` (monotonic), so an attack that starves it cannot stretch the run."""
    out = []
    for _ in range(n):
        if deadline is not None and time.monotonic() > deadline:
            break
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("GET", "/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})
            answer = conn.getresponse()
            answer.read()
            conn.close()
            if answer.status != 200:
                raise RuntimeError(f"honest request got {answer.status}")
        except (socket.timeout, TimeoutError, ConnectionError):
            pass
        out.append(min((time.perf_counter() - started) * 1000, timeout * 1000))
    return out


def slow_client(port: int, trickle: float, until: float, lifetimes: list[float]) -> None:
    """One attacker: a connection that never finishes its head, opened again whenever the server
    closes it, until `until`. Records each connection's lifetime."""
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(trickle)
            while time.monotonic() < until:
                try:
                    sock.recv(1024)  # b"" (closed) or an answer (408): either ends it
                    break
                except socket.timeout:
                    pass
                sock.sendall(b"X-Slow: 1\r\n")
            sock.close()
        except OSError:
            time.sleep(0.05)
        lifetimes.append(time.monotonic() - started)



def run(bin_path: str, label: str, header_timeout: int, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"slowloris-{label}-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_", "REDIS_"))}
    env.update(DATA_DIR=str(work), LISTEN_ADDR=f"127.0.0.1:{port}", METRICS_ADDR="127.0.0.1:0", ADMIN_API_KEY=KEY,
               HTTP_HEADER_READ_TIMEOUT_SECS=str(header_timeout), HTTP_MAX_CONNECTIONS=str(args.cap),
               RATE_LIMIT_PER_SECOND="100000", RATE_LIMIT_BURST="100000",
               TENANT_RATE_LIMIT_PER_SECOND="100000", TENANT_RATE_LIMIT_BURST="100000", RUST_LOG="warn")
    proc = procs.start([bin_path, "run"], work / "service.log", env)
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
        honest(port, 20, args.honest_timeout)  # warm up
        quiet = honest(port, args.requests, args.honest_timeout)
        lifetimes: list[float] = []
        until = time.monotonic() + args.attack_seconds
        threads = [threading.Thread(target=slow_client, args=(port, args.trickle, until, lifetimes), daemon=True)
                   for _ in range(args.slow)]
        for t in threads:
            t.start()
        time.sleep(1)  # let the slow connections take their places
        attacked = honest(port, args.requests, args.honest_timeout, until - 1)
        for t in threads:
            t.join(args.attack_seconds + 10)
        return {
            "config": label,
            "quiet_p50_ms": round(statistics.median(quiet), 2),
            "quiet_p99_ms": round(percentile(quiet, 99), 2),
            "attack_p50_ms": round(statistics.median(attacked), 2),
            "attack_p99_ms": round(percentile(attacked, 99), 2),
            "attack_timeouts": sum(1 for v in attacked if v >= args.honest_timeout * 1000),
            "slow_closed_median_s": round(statistics.median(lifetimes), 1) if lifetimes else None,
            "slow_connections": len(lifetimes),
            "slow_held_to_end": sum(1 for v in lifetimes if v >= args.attack_seconds - 1.5),
        }
    finally:
        procs.stop(proc, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--slow", type=int, default=400, help="slow connections")
    parser.add_argument("--cap", type=int, default=256, help="HTTP_MAX_CONNECTIONS in both runs")
    parser.add_argument("--timeout", type=int, default=5, help="HTTP_HEADER_READ_TIMEOUT_SECS of the shipped run")
    parser.add_argument("--trickle", type=float, default=1.0, help="seconds between a slow client's header lines")
    parser.add_argument("--requests", type=int, default=300, help="honest requests per phase")
    parser.add_argument("--attack-seconds", type=float, default=30)
    parser.add_argument("--honest-timeout", type=float, default=3.0, help="an honest request's own timeout")
    args = parser.parse_args()
    results = [run(args.bin, "timeout", args.timeout, args), run(args.bin, "no-timeout", 100_000, args)]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
