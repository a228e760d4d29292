"""Every event that went out during a run, per channel, as a receiver got it:

- `sns`: SNS → the SQS tap queue (AWS backend), drained with boto3 straight from moto;
- `console`: the embedded backend's ConsoleNotifier, one JSON line on each worker's stdout;
- `webhook`: WEBHOOK_URL, a receiver in this process (both backends). It can answer
  503 to a share of the deliveries for a while (a receiver's outage: the outbox retries).

Each delivery is kept with its event id, so the ledger can dedupe as a receiver would
and still count the raw repeats."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.ports import free_port


@dataclass
class Delivery:
    channel: str
    event_id: str
    event: dict


@dataclass
class Events:
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, channel: str, event: dict, event_id: str | None = None) -> None:
        with self.lock:
            self.deliveries.append(Delivery(channel, event_id or event.get("event_id", ""), event))

    def channels(self) -> set[str]:
        return {d.channel for d in self.deliveries}

    def by_job(self, channel: str) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        with self.lock:
            for d in self.deliveries:
                if d.channel == channel and d.event.get("job_id"):
                    out.setdefault(d.event["job_id"], []).append(d)
        return out


class WebhookReceiver:
    """Takes the JSON webhook's POSTs; the event id is the `webhook-id` (or
    `idempotency-key`) header, as Standard Webhooks receivers dedupe on it."""

    def __init__(self, events: Events, rng: random.Random) -> None:
        self.events, self.rng = events, rng
        self.fail_share, self.fail_until = 0.0, 0.0
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if time.time() < receiver.fail_until and receiver.rng.random() < receiver.fail_share:
                    receiver.refused += 1
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {"unparseable": body.decode(errors="replace")}
                event_id = self.headers.get("webhook-id") or self.headers.get("idempotency-key")
                receiver.events.add("webhook", event, event_id)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def outage(self, seconds: float, share: float) -> None:
        """Answers 503 to `share` of the deliveries for `seconds`."""
        self.fail_share, self.fail_until = share, time.time() + seconds
        time.sleep(seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def drain_tap(events: Events, sqs, url: str) -> int:
    """Moves everything on the SNS tap queue into `events`; returns how many came."""
    got = 0
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return got
        for message in batch:
            events.add("sns", json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            got += 1


def read_console(events: Events, outputs: list[Path]) -> None:
    """The ConsoleNotifier's lines from every worker's stdout (logs go to stderr)."""
    for path in outputs:
        for line in path.read_text(errors="replace").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "event_id" in event:
                events.add("console", event)
