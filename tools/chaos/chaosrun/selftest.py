"""The ledger's own check, run before every chaos run: a fake backend with one job, made
wrong one way at a time, must fail the ledger each time (a checker that cannot fail
proves nothing), and the clean one and a raw repeat of its event must pass."""

from __future__ import annotations

import struct

from . import ledger
from .cluster import sha256
from .effects import Events
from .load import Accepted

ORIGINAL = b"original-bytes"


def _webp(w: int, h: int) -> bytes:
    payload = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", w, h) + b"\0" * 20
    chunk = b"VP8 " + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


class _Fake:
    backend = "embedded"

    def __init__(self) -> None:
        self.events, self.status = Events(), "succeeded"
        self.objs = {"originals/i1": ORIGINAL}
        self.rows = []
        for preset, w in (("large", 100), ("medium", 50), ("thumb", 20)):
            key = f"variants/i1/t/{preset}-v.webp"
            self.objs[key] = _webp(w, w)
            self.rows.append(dict(image_id="i1", preset=preset, preset_version="v", format="webp", width=w, height=w,
                                  bytes=len(self.objs[key]), object_key=key))
        self.events.add("webhook", self.event())

    def event(self, event_id: str = "e1", kind: str = "image.processed", status: str = "succeeded",
              variants: bool = True) -> dict:
        rows = self.rows if variants else []
        return dict(event_id=event_id, event=kind, status=status, job_id="j1", image_id="i1",
                    variants=[dict(preset=r["preset"], preset_version="v", key=r["object_key"], bytes=r["bytes"],
                                   width=r["width"], height=r["height"]) for r in rows])

    def query(self, sql: str) -> list[dict]:
        if "FROM jobs" in sql:
            return [dict(id="j1", image_id="i1", status=self.status, attempts=1, error_code=None)]
        if "FROM images" in sql:
            return [dict(id="i1", source_key="originals/i1", sha256=sha256(ORIGINAL), bytes=len(ORIGINAL))]
        if "FROM variants" in sql:
            return self.rows
        return []

    def objects(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.objs.items()}

    def read_object(self, key: str) -> bytes | None:
        return self.objs.get(key)

    def event_channels(self) -> tuple[str, ...]:
        return ("webhook",)

    def queue_left(self) -> int:
        return 0


def _truncate(c: _Fake) -> None:
    key = c.rows[0]["object_key"]
    c.objs[key] = c.objs[key][:-3]
    c.rows[0]["bytes"] = len(c.objs[key])


def _wrong_kind(c: _Fake) -> None:
    c.events.deliveries.clear()
    c.events.add("webhook", c.event(kind="image.failed", status="failed", variants=False))


CASES = {
    "a truncated variant": _truncate,
    "a size the row does not record": lambda c: c.rows[1].__setitem__("bytes", 999),
    "a second distinct event": lambda c: c.events.add("webhook", c.event("e2")),
    "no event": lambda c: c.events.deliveries.clear(),
    "image.failed for a succeeded row": _wrong_kind,
    "a preset without its row": lambda c: c.rows.pop(),
    "a job left processing": lambda c: setattr(c, "status", "processing"),
    "an original that is not what was sent": lambda c: c.objs.__setitem__("originals/i1", b"x" * len(ORIGINAL)),
    "the API's answer is stale": lambda c: setattr(c, "api", "processing"),
}


def run() -> list[str]:
    """What the ledger got wrong; empty when it caught every case and passed the clean ones."""
    wrong = []
    accepted = {"j1": Accepted("j1", "i1", sha256(ORIGINAL), len(ORIGINAL))}
    for name, mutate in {"clean": None, "a raw repeat": lambda c: c.events.add("webhook", c.event()), **CASES}.items():
        c = _Fake()
        if mutate:
            mutate(c)
        result = ledger.check(c, accepted, {"j1": getattr(c, "api", c.status)})
        if result.ok != (name in ("clean", "a raw repeat")):
            wrong.append(f"{name}: ledger ok={result.ok} {result.mismatches}")
    return wrong
