"""The event receiver (WEBHOOK_URL): when each job's outcome event arrived."""

from __future__ import annotations

import http.server
import json
import threading
import time


class Events:
    """A webhook receiver: records when each job's outcome event arrived."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.first: dict[str, tuple[float, str, dict]] = {}
        self.deliveries = 0
        events = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    event = json.loads(body)
                except ValueError:
                    return
                events.record(event, arrived)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, event: dict, arrived: float) -> None:
        job = event.get("job_id")
        with self.cond:
            self.deliveries += 1
            if job and job not in self.first:
                self.first[job] = (arrived, event.get("status", "?"), event.get("timings") or {})
                self.cond.notify_all()

    def get(self, job: str):
        with self.cond:
            return self.first.get(job)

    def wait(self, jobs: list[str], timeout: float) -> dict[str, tuple[float, str, dict]]:
        """Waits until every job has an event, or the timeout; returns those that came."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                if all(j in self.first for j in jobs):
                    break
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
            return {j: self.first[j] for j in jobs if j in self.first}

    def close(self) -> None:
        self.server.shutdown()
