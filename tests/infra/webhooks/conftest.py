"""What the webhook checks share: a receiver that records every delivery, and the service."""

from __future__ import annotations

import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "lib"))

from harness import procs  # noqa: E402

ADMIN_KEY = "webhook-check-admin-key"


class Receiver(ThreadingHTTPServer):
    """Records (headers, body, status answered) for every POST; `answer(n)` picks the status
    of the n-th request (0-based)."""

    def __init__(self, answer: Callable[[int], int]):
        self.deliveries: list[tuple[dict[str, str], bytes, int]] = []
        self.answer = answer
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"

    def accepted(self) -> list[tuple[dict[str, str], bytes, int]]:
        with self.lock:
            return [d for d in self.deliveries if 200 <= d[2] < 300]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.server.lock:
            status = self.server.answer(len(self.server.deliveries))
            self.server.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def service_env(work: Path, port: int, **extra: str) -> dict[str, str]:
    """`image-service run`'s environment: the embedded defaults in `work`, nothing inherited
    that could point it elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_", "REDIS_", "WEBHOOK_"))}
    env.update({"DATA_DIR": str(work), "LISTEN_ADDR": f"127.0.0.1:{port}", "METRICS_ADDR": "127.0.0.1:0",
                "ADMIN_API_KEY": ADMIN_KEY, "QUEUE_WAIT_SECS": "1", **extra})
    return env


@pytest.fixture(scope="session")
def exe() -> Path:
    binary = procs.service_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: build it first (scripts/test builds it), or set IMAGE_SERVICE_BIN")
    return binary
