"""The engine alone: imaging's bench example on the same files."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


class Engine:
    """The engine's bench binary (imaging/examples/bench.rs)."""

    def __init__(self, path: str | None, probe_file: Path) -> None:
        self.path = path if path and os.access(path, os.X_OK) else None
        self.presets_mode = False
        self.note = ""
        if not self.path:
            self.note = "bench binary not found (BENCH_BIN); engine figures skipped"
            return
        done = subprocess.run(
            [self.path, "presets", "--concurrency", "1", str(probe_file)], capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0 and "RESULT" in done.stdout:
            self.presets_mode = True
            self.note = "`bench presets --concurrency N`: imaging::process with default_presets(), N threads"
        else:
            self.note = (
                "`bench presets` missing: N parallel `bench run --format webp` processes "
                "(the same presets as default_presets(): WebP q80 balanced, 2048/1024/256)"
            )

    @staticmethod
    def _result(stdout: str) -> tuple[int, float]:
        match = re.search(r"^RESULT .*images=(\d+) seconds=([0-9.]+)", stdout, re.M)
        if not match:
            raise RuntimeError(f"no RESULT line in bench output: {stdout[-500:]}")
        return int(match.group(1)), float(match.group(2))

    def throughput(self, files: list[Path], concurrency: int) -> float:
        """Images per second over `files` (repeats allowed) at `concurrency`."""
        if not self.path:
            return float("nan")
        if self.presets_mode:
            done = subprocess.run(
                [self.path, "presets", "--concurrency", str(concurrency), *map(str, files)],
                capture_output=True, text=True, timeout=3600, check=True,
            )
            images, seconds = self._result(done.stdout)
            return images / seconds
        shares = [files[i::concurrency] for i in range(concurrency)]
        procs = [
            subprocess.Popen([self.path, "run", "--format", "webp", *map(str, share)], stdout=subprocess.PIPE, text=True)
            for share in shares
            if share
        ]
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"bench run exited with {proc.returncode}")
            results.append(self._result(out))
        # The processes read their inputs first and then time their own pass;
        # the passes overlap, so the slowest one bounds the wall time.
        return sum(i for i, _ in results) / max(s for _, s in results)

    def seconds_per_image(self, file: Path, repeats: int) -> float:
        rate = self.throughput([file] * repeats, 1)
        return 1.0 / rate if rate == rate else float("nan")
