"""The inputs: the corpus photos, the generated tiny and large uploads, and the
engine's per-job memory budget."""

from __future__ import annotations

import io
import random
import re
import sys
from pathlib import Path

from .common import LARGE, MIB, ROOT


def noise_jpeg(rng: random.Random, at_least: int) -> bytes:
    """A JPEG of random pixels (incompressible) of at least `at_least` bytes."""
    from PIL import Image

    side = 600
    while True:
        noise = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buf = io.BytesIO()
        noise.save(buf, "JPEG", quality=92)
        if buf.tell() >= at_least:
            return buf.getvalue()
        side = int(side * max(1.05, (at_least / buf.tell()) ** 0.5))


def make_images(out: Path) -> tuple[bytes, bytes, bytes]:
    """A 64x64 photo-like JPEG, and JPEGs of about 2 MB and 8 MB."""
    from PIL import Image, ImageFilter  # noqa: F401 (Image used below)

    rng = random.Random(10)
    tiny = Image.new("RGB", (64, 64))
    tiny.putdata([(x * 4, y * 4, (x * y) % 256) for y in range(64) for x in range(64)])
    tiny = tiny.filter(ImageFilter.GaussianBlur(1))
    buf = io.BytesIO()
    tiny.save(buf, "JPEG", quality=85)
    tiny_bytes = buf.getvalue()
    big_bytes = noise_jpeg(rng, 2_000_000)
    huge_bytes = noise_jpeg(rng, 8_000_000)
    (out / "tiny.jpg").write_bytes(tiny_bytes)
    (out / "upload-2mb.jpg").write_bytes(big_bytes)
    (out / "upload-8mb.jpg").write_bytes(huge_bytes)
    return tiny_bytes, big_bytes, huge_bytes


def job_budget_mib(args) -> tuple[float, str]:
    """The engine's per-job memory budget: imaging::Limits::default().max_alloc_bytes."""
    if args.job_budget_mib:
        return args.job_budget_mib, "--job-budget-mib"
    source = (ROOT / "imaging/src/lib.rs").read_text()
    match = re.search(r"max_alloc_bytes:\s*([0-9_ *]+),", source)
    if match:
        value = 1
        for factor in match.group(1).replace("_", "").split("*"):
            value *= int(factor.strip())
        return value / MIB, "imaging::Limits::default().max_alloc_bytes"
    return 512.0, "assumed (imaging::Limits not readable)"


def corpus_photos(corpus_arg: str | None, quick: bool) -> list[Path]:
    """The 8 large photos of the shared corpus; for the smoke without it, the one large
    photo the repository carries."""
    corpus = Path(corpus_arg) if corpus_arg else next(
        (p for p in (ROOT.parent / "shared/corpus", Path("/work/shared/corpus")) if p.is_dir()), ROOT.parent / "shared/corpus"
    )
    photos = [corpus / f"{name}.jpg" for name in LARGE]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing and quick:
        print(f"bench-pipeline: corpus not found at {corpus}; the smoke uses testdata/kleiber.jpg", flush=True)
        return [ROOT / "testdata/kleiber.jpg"]
    if missing:
        sys.exit(f"bench-pipeline: corpus photos missing: {missing} (set CORPUS)")
    return photos
