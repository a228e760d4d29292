"""The ledger check: after a run, every accepted upload reconciled against the rows, the
objects and the events, as a careful operator would.

Per accepted upload (job id and image id from the API's 202):
- exactly one job row, in a terminal state (succeeded / failed / dead); the API's last
  answer agrees with it (a stale read cache would not);
- its image row, and the original in the store with the size and SHA-256 the row
  records (and that the client sent);
- a succeeded job: exactly one variant row per preset, each object stored with the size
  the row records and decodable as the row's format at the row's width and height
  (`variants` records no hash, so size + a structural decode stand in for one); a failed
  or dead job: no variant rows;
- on every event channel (SNS tap, console, webhook): after deduplication by event id,
  exactly one event for the job, whose kind and status match the row (`image.processed`
  for succeeded, `image.failed` for failed/dead), whose image id matches and whose
  variant list is the rows'. Raw repeats of the same event id are counted, not failed;
  a second distinct event id for one job is a duplicate effect.
Also: no job in the database that no client was given (with Idempotency-Key retries there
should be none), no variant object that no row names, no message left on the job queue
table (embedded), no webhook delivery left pending.

Every disagreement is one line, `job <id>: what disagreed`."""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .cluster import Cluster, sha256
from .load import FINAL, Accepted

PRESETS = ("large", "medium", "thumb")  # the default presets (pipeline::settings)
EVENT_KIND = {"succeeded": "image.processed", "failed": "image.failed", "dead": "image.failed"}


@dataclass
class Ledger:
    accepted: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINAL, 0))
    lost: int = 0
    duplicate_effects: int = 0
    mismatches: list[str] = field(default_factory=list)
    raw_repeats: dict[str, int] = field(default_factory=dict)  # channel -> repeated deliveries
    deliveries: dict[str, int] = field(default_factory=dict)  # channel -> raw deliveries
    objects_checked: int = 0
    temp_files: int = 0
    enqueue_failed: int = 0  # jobs ended `enqueue-failed` whose client got a 503 and retried

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.lost == 0 and self.duplicate_effects == 0

    def bad(self, who: str, what: str) -> None:
        self.mismatches.append(f"{who}: {what}")


# --- a structural decode, format by format ---------------------------------------------
def dimensions(data: bytes, fmt: str) -> tuple[int, int] | str:
    """(width, height) read from a whole, well-formed file; else why not."""
    try:
        if fmt == "webp":
            return _webp(data)
        if fmt == "png":
            return _png(data)
        if fmt in ("jpeg", "jpg"):
            return _jpeg(data)
        if fmt == "avif":
            return "avif not decoded here" if data[4:8] != b"ftyp" else (-1, -1)
    except (struct.error, IndexError, ValueError) as err:
        return f"malformed {fmt}: {err}"
    return f"unknown format {fmt}"


def _webp(d: bytes) -> tuple[int, int] | str:
    if d[:4] != b"RIFF" or d[8:12] != b"WEBP":
        return "not a RIFF/WEBP file"
    if struct.unpack("<I", d[4:8])[0] + 8 != len(d):
        return f"RIFF size {struct.unpack('<I', d[4:8])[0] + 8} != file size {len(d)} (truncated?)"
    chunk, size = d[12:16], struct.unpack("<I", d[16:20])[0]
    if 20 + size > len(d):
        return "first chunk runs past the end"
    p = d[20:20 + size]
    if chunk == b"VP8 ":
        if p[3:6] != b"\x9d\x01\x2a":
            return "VP8 start code missing"
        w, h = struct.unpack("<HH", p[6:10])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if p[0] != 0x2F:
            return "VP8L signature missing"
        bits = struct.unpack("<I", p[1:5])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(p[4:7], "little") + 1, int.from_bytes(p[7:10], "little") + 1
    return f"unknown WebP chunk {chunk!r}"


def _png(d: bytes) -> tuple[int, int] | str:
    if d[:8] != b"\x89PNG\r\n\x1a\n":
        return "no PNG signature"
    pos, dims, seen_end = 8, None, False
    while pos < len(d):
        length, kind = struct.unpack(">I4s", d[pos:pos + 8])
        data = d[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", d[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + data) != crc:
            return f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            dims = struct.unpack(">II", data[:8])
        pos += 12 + length
        if kind == b"IEND":
            seen_end = True
            break
    if not seen_end:
        return "no IEND (truncated)"
    return dims or "no IHDR"


def _jpeg(d: bytes) -> tuple[int, int] | str:
    if d[:2] != b"\xff\xd8":
        return "no SOI"
    if d.rstrip(b"\0")[-2:] != b"\xff\xd9":
        return "no EOI (truncated)"
    pos = 2
    while pos < len(d):
        if d[pos] != 0xFF:
            return "marker expected"
        marker = d[pos + 1]
        length = struct.unpack(">H", d[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", d[pos + 5:pos + 9])
            return w, h
        pos += 2 + length
    return "no SOF"


# --- the check -------------------------------------------------------------------------
def check(cluster: Cluster, accepted: dict[str, Accepted], api_final: dict[str, str]) -> Ledger:
    led = Ledger(accepted=len(accepted))
    jobs = {r["id"]: r for r in cluster.query("SELECT id, image_id, status, attempts, error_code FROM jobs")}
    images = {r["id"]: r for r in cluster.query("SELECT id, source_key, sha256, bytes FROM images")}
    variants: dict[str, list[dict]] = {}
    for r in cluster.query("SELECT image_id, preset, preset_version, format, width, height, bytes, object_key "
                           "FROM variants"):
        variants.setdefault(r["image_id"], []).append(r)
    objects = cluster.objects()
    led.temp_files = sum(1 for k in objects if "/.tmp-" in f"/{k}")

    _check_rows(cluster, led, accepted, api_final, jobs, images, variants, objects)
    _check_events(cluster, led, accepted, jobs, variants)
    _check_leftovers(cluster, led, accepted, jobs, variants, objects)
    return led


def _check_rows(cluster, led, accepted, api_final, jobs, images, variants, objects) -> None:
    to_read: list[tuple[str, str, dict]] = []
    for job_id, a in accepted.items():
        who = f"job {job_id}"
        row = jobs.get(job_id)
        if row is None:
            led.lost += 1
            led.bad(who, "accepted (202) but no job row")
            continue
        status = row["status"]
        if status not in FINAL:
            led.lost += 1
            led.bad(who, f"left {status} (attempts {row['attempts']})")
            continue
        led.counts[status] += 1
        if api_final.get(job_id) != status:
            led.bad(who, f"the API answers {api_final.get(job_id)!r}, the row says {status!r}")
        if row["image_id"] != a.image_id:
            led.bad(who, f"row's image {row['image_id']} != the API's {a.image_id}")
        image = images.get(a.image_id)
        if image is None:
            led.bad(who, f"no image row {a.image_id}")
            continue
        if image["sha256"] != a.sha256 or int(image["bytes"]) != a.size:
            led.bad(who, f"image row records {image['bytes']} B sha256 {image['sha256'][:12]}…, "
                         f"the client sent {a.size} B {a.sha256[:12]}…")
        original = image["source_key"]
        if original not in objects:
            led.bad(who, f"original {original} not in the store")
        else:
            to_read.append((who, original, {"sha256": image["sha256"], "bytes": image["bytes"], "format": None}))
        rows = variants.get(a.image_id, [])
        if status != "succeeded":
            if rows:
                led.bad(who, f"{status} but {len(rows)} variant rows")
            continue
        presets = sorted(r["preset"] for r in rows)
        if presets != sorted(PRESETS):
            led.bad(who, f"variant rows per preset: {presets}, expected one each of {list(PRESETS)}")
            if len(presets) > len(set(presets)):
                led.duplicate_effects += 1
        for r in rows:
            key = r["object_key"]
            if key not in objects:
                led.bad(who, f"variant {r['preset']}: object {key} not in the store")
            elif objects[key] != int(r["bytes"]):
                led.bad(who, f"variant {r['preset']}: object {key} is {objects[key]} B, the row says {r['bytes']} B")
            else:
                to_read.append((who, key, r))

    def verify(item: tuple[str, str, dict]) -> str | None:
        who, key, r = item
        data = cluster.read_object(key)
        if data is None:
            return f"{who}: {key} vanished while checked"
        if r["format"] is None:  # the original: the hash the row records
            if sha256(data) != r["sha256"] or len(data) != int(r["bytes"]):
                return f"{who}: original {key} is {len(data)} B sha256 {sha256(data)[:12]}…, row says {r['bytes']} B"
            return None
        dims = dimensions(data, r["format"])
        if isinstance(dims, str):
            return f"{who}: variant {r['preset']} ({key}) does not decode: {dims}"
        if dims != (-1, -1) and dims != (int(r["width"]), int(r["height"])):
            return f"{who}: variant {r['preset']} is {dims[0]}x{dims[1]}, the row says {r['width']}x{r['height']}"
        return None

    with ThreadPoolExecutor(4) as pool:
        for problem in pool.map(verify, to_read):
            led.objects_checked += 1
            if problem:
                led.mismatches.append(problem)


def _variant_set(rows: list[dict]) -> set[tuple]:
    return {(r["preset"], r["preset_version"], r["object_key"], int(r["bytes"]), int(r["width"]), int(r["height"]))
            for r in rows}


def _event_variant_set(event: dict) -> set[tuple]:
    return {(v.get("preset"), v.get("preset_version"), v.get("key"), int(v.get("bytes", -1)), int(v.get("width", -1)),
             int(v.get("height", -1))) for v in event.get("variants") or []}


def _check_events(cluster, led, accepted, jobs, variants) -> None:
    for channel in sorted(cluster.event_channels()):
        per_job = cluster.events.by_job(channel)
        led.deliveries[channel] = sum(len(v) for v in per_job.values())
        led.raw_repeats[channel] = sum(len(v) - len({d.event_id for d in v}) for v in per_job.values())
        for job_id, a in accepted.items():
            who = f"job {job_id} [{channel}]"
            row = jobs.get(job_id)
            if row is None or row["status"] not in FINAL:
                if per_job.get(job_id):
                    led.bad(who, "an event went out for a job that is not final")
                continue
            got = per_job.get(job_id, [])
            distinct: dict[str, dict] = {}
            for d in got:
                if d.event_id in distinct and _essence(distinct[d.event_id]) != _essence(d.event):
                    led.bad(who, f"event {d.event_id} delivered twice with different content")
                distinct.setdefault(d.event_id, d.event)
            if not distinct:
                led.bad(who, f"no event for a {row['status']} job")
                continue
            if len(distinct) > 1:
                led.duplicate_effects += 1
                led.bad(who, f"{len(distinct)} distinct events: {sorted(distinct)}")
            for event_id, event in distinct.items():
                want = EVENT_KIND[row["status"]]
                if event.get("event") != want or event.get("status") != row["status"]:
                    led.bad(who, f"event {event_id} is {event.get('event')}/{event.get('status')}, the row says "
                                 f"{row['status']} (expects {want})")
                if event.get("image_id") != a.image_id:
                    led.bad(who, f"event {event_id} names image {event.get('image_id')}, not {a.image_id}")
                rows = variants.get(a.image_id, []) if row["status"] == "succeeded" else []
                if _event_variant_set(event) != _variant_set(rows):
                    led.bad(who, f"event {event_id} lists variants {sorted(_event_variant_set(event))}, "
                                 f"the rows are {sorted(_variant_set(rows))}")
        known = set(accepted)
        for job_id in per_job:
            if job_id not in known and job_id not in jobs:
                led.bad(f"job {job_id} [{channel}]", "an event for a job the database does not have")


def _essence(event: dict) -> tuple:
    return (event.get("event"), event.get("status"), event.get("image_id"), frozenset(_event_variant_set(event)))


def _check_leftovers(cluster, led, accepted, jobs, variants, objects) -> None:
    for job_id, row in jobs.items():
        if job_id in accepted:
            continue
        if row["status"] == "failed" and row["error_code"] == "enqueue-failed":
            # By design: the upload was recorded, the enqueue failed, the client got a 503
            # and the job was ended so that nothing waits for a message that never comes.
            led.enqueue_failed += 1
        else:
            led.bad(f"job {job_id}", f"in the database ({row['status']}) but no client was given it")
    named = {r["object_key"] for rows in variants.values() for r in rows}
    # An unfinished job's attempt may have stored objects before it was killed: that
    # job is already counted lost; only a final job's extra objects are effects.
    final_images = {row["image_id"] for row in jobs.values() if row["status"] in FINAL}
    for key in objects:
        image = key.split("/")[1] if key.count("/") >= 2 else ""
        if (key.startswith(("variants/", "private/")) and key not in named and "/.tmp-" not in f"/{key}"
                and image in final_images):
            led.duplicate_effects += 1
            led.bad(f"object {key}", "stored, but no variant row names it")
    left = cluster.queue_left()
    if left:
        led.bad("job queue", f"{left} messages left on it")
    pending = cluster.query("SELECT target, state, COUNT(*) AS n FROM webhook_deliveries GROUP BY target, state")
    for r in pending:
        if r["state"] != "delivered":
            led.bad(f"webhook deliveries ({r['target']})", f"{r['n']} left {r['state']}")
