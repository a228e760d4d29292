"""Pre-filling the tables with copies of a real job, so the tiny runs can compare
fresh tables with full ones."""

from __future__ import annotations

import random
import re
import sqlite3
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from .common import log
from .events import Events
from .load import closed_loop
from .stack import Stack, count_jobs, psql


TS_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)([ T])(\d\d):(\d\d):(\d\d)(\.\d+)?")


def shift_timestamp(value, seconds: int):
    """The same timestamp `seconds` earlier, in the same representation."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return value - seconds * 1000
    if isinstance(value, str):
        match = TS_RE.search(value)
        if not match:
            return value
        y, mo, d, sep, h, mi, s, frac = match.groups()
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)) - timedelta(seconds=seconds)
        text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (frac or "")
        return value[: match.start()] + text + value[match.end():]
    return value


def uuid7_bytes(ms: int) -> bytes:
    rand = random.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return value.to_bytes(16, "big")


def new_id_like(template, ms: int):
    raw = uuid7_bytes(ms)
    if isinstance(template, bytes):
        return raw
    return str(uuid.UUID(bytes=raw))


def id_text(value) -> str:
    return str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else str(value)


# Columns given new values in every copy; every other column is copied from
# the template job as it is, so columns added later come along.
FRESH_NULL = {"idempotency_key", "request_fingerprint", "replay_of"}


def prefill_sqlite(db_path: Path, target: int, template: str | None = None) -> int:
    """Copies the newest succeeded job of the smallest image, or the job `template`
    (its id), with its image, variants and audit rows, until `jobs` holds `target` rows."""
    db = sqlite3.connect(db_path, timeout=60)
    db.row_factory = sqlite3.Row
    have = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    need = target - have
    if need <= 0:
        return 0
    if template is None:
        job = db.execute(
            "SELECT j.* FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.status = 'succeeded' "
            "ORDER BY i.bytes, j.created_at DESC LIMIT 1"
        ).fetchone()
    else:
        # The id column holds the UUID as text or as its 16 bytes.
        job = db.execute("SELECT * FROM jobs WHERE id IN (?, ?)", (template, uuid.UUID(template).bytes)).fetchone()
    image = db.execute("SELECT * FROM images WHERE id = ?", (job["image_id"],)).fetchone()
    variants = db.execute("SELECT * FROM variants WHERE image_id = ?", (job["image_id"],)).fetchall()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    audits = db.execute("SELECT * FROM job_audit WHERE job_id = ?", (job["id"],)).fetchall() if "job_audit" in tables else []
    image_text = id_text(image["id"])
    now_ms = int(time.time() * 1000)

    def copy(row: sqlite3.Row, k: int, image_id, job_id, skip_pk: bool) -> tuple[list[str], tuple]:
        cols, values = [], []
        for col in row.keys():
            value = row[col]
            if col == "id" and skip_pk:
                continue
            if col == "id":
                value = image_id if row is image else job_id
            elif col == "image_id":
                value = image_id
            elif col == "job_id":
                value = job_id
            elif col in FRESH_NULL:
                value = None
            elif col == "sha256":
                value = uuid.uuid4().hex + uuid.uuid4().hex
            elif col in ("source_key", "object_key") and isinstance(value, str):
                value = value.replace(image_text, id_text(image_id))
            elif col.endswith("_at"):
                value = shift_timestamp(value, k)
            cols.append(col)
            values.append(value)
        return cols, tuple(values)

    plan: dict[str, tuple[list[str], list[tuple]]] = {}

    def add(table: str, cols: list[str], values: tuple) -> None:
        plan.setdefault(table, (cols, []))[1].append(values)

    # Copy k is dated k seconds before the first real job (oldest first, as
    # the table would have filled), ids included (UUIDv7 carries the time).
    for k in range(need, 0, -1):
        age = 3600 + k
        image_id, job_id = new_id_like(image["id"], now_ms - 1000 * age), new_id_like(job["id"], now_ms - 1000 * age)
        add("images", *copy(image, age, image_id, job_id, False))
        add("jobs", *copy(job, age, image_id, job_id, False))
        for v in variants:
            add("variants", *copy(v, age, image_id, job_id, True))
        for a in audits:
            add("job_audit", *copy(a, age, image_id, job_id, True))
    with db:
        for table in ("images", "jobs", "variants", "job_audit"):
            if table in plan:
                cols, rows = plan[table]
                names = ", ".join(f'"{c}"' for c in cols)
                marks = ", ".join("?" for _ in cols)
                db.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
    db.execute("ANALYZE")
    db.close()
    return need


def prefill_postgres(url: str, target: int) -> int:
    """The same copies as prefill_sqlite, in one SQL statement per table."""
    have = int(psql(url, "SELECT count(*) FROM jobs").strip())
    need = target - have
    if need <= 0:
        return 0
    template = psql(
        url,
        "SELECT j.id FROM jobs j JOIN images i ON i.id = j.image_id WHERE j.status = 'succeeded' "
        "ORDER BY i.bytes, j.created_at DESC LIMIT 1",
    ).strip()

    def columns(table: str) -> list[tuple[str, str]]:
        out = psql(
            url,
            "SELECT column_name, data_type, coalesce(column_default, '') FROM information_schema.columns "
            f"WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position",
        )
        return [tuple(line.split("|", 2)) for line in out.splitlines() if line]

    def select(table: str, image_or_job: str) -> str:
        cols, exprs = [], []
        for name, data_type, default in columns(table):
            if name == "id" and (data_type != "uuid" or default.startswith("nextval")):
                continue  # a serial or identity key: the database numbers the copies
            q = f't."{name}"'
            if name == "id":
                expr = "p.image_id" if image_or_job == "image" else "p.job_id"
            elif name == "image_id":
                expr = "p.image_id"
            elif name == "job_id":
                expr = "p.job_id"
            elif name in FRESH_NULL:
                expr = "NULL"
            elif name == "sha256":
                expr = "md5(p.image_id::text) || md5(p.job_id::text)"
            elif name in ("source_key", "object_key"):
                expr = f"replace({q}, t0.image_id::text, p.image_id::text)"
            elif name.endswith("_at") and data_type.startswith("timestamp"):
                expr = f"{q} - (3600 + p.n) * interval '1 second'"
            else:
                expr = q
            cols.append(f'"{name}"')
            exprs.append(expr)
        return ", ".join(cols), ", ".join(exprs)

    v7 = (
        "encode(overlay(uuid_send(gen_random_uuid()) placing substring(int8send("
        "(extract(epoch from now()) * 1000)::bigint - 3600000 - g * 1000) from 3) from 1 for 6), 'hex')::uuid"
    )
    statements = [
        "BEGIN",
        f"CREATE TEMP TABLE prefill AS SELECT g AS n, {v7} AS image_id, {v7} AS job_id "
        f"FROM generate_series({need}, 1, -1) g",
        f"CREATE TEMP TABLE t0 AS SELECT * FROM jobs WHERE id = '{template}'",
    ]
    for table, kind, where in (
        ("images", "image", "t.id = t0.image_id"),
        ("jobs", "job", "t.id = t0.id"),
        ("variants", "image", "t.image_id = t0.image_id"),
        ("job_audit", "job", "t.job_id = t0.id"),
    ):
        if not columns(table):
            continue
        cols, exprs = select(table, kind)
        statements.append(f'INSERT INTO "{table}" ({cols}) SELECT {exprs} FROM prefill p, t0, "{table}" t WHERE {where}')
    statements += ["COMMIT", "ANALYZE"]
    psql(url, "; ".join(statements))
    return need


def prefill(stack: Stack, events: Events, args, tiny: bytes) -> dict:
    """Fills the current database to `args.rows` jobs (its warm-up jobs are the template)."""
    t0 = time.perf_counter()
    if args.prefill == "sql":
        log(f"{stack.backend}: pre-filling the tables to {args.rows} jobs by SQL")
        if stack.backend == "embedded":
            added = prefill_sqlite(stack.data_dir / "image-service.db", args.rows)
        else:
            added = prefill_postgres(f"{stack.pg}/{stack.database}", args.rows)
    else:
        added = max(0, args.rows - count_jobs(stack))
        log(f"{stack.backend}: pre-filling the tables to {args.rows} jobs by running {added} tiny jobs")
        closed_loop(stack, events, "prefill", [tiny], added, args.upload_concurrency, 3600)
    return {"how": args.prefill, "added": added, "seconds": time.perf_counter() - t0}
