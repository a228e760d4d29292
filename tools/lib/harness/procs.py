"""Starting and stopping the processes the tools drive, and waiting until they serve."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Mapping, Sequence


def start(argv: Sequence[str], log: IO[bytes] | Path | str, env: Mapping[str, str] | None = None,
          append: bool = False, cwd: Path | str | None = None) -> subprocess.Popen:
    """Starts `argv` (in `cwd`, if given) with stdout and stderr going to `log` (an open file,
    or a path that is opened here, truncated unless `append`)."""
    if isinstance(log, (str, Path)):
        with open(log, "ab" if append else "wb") as out:
            return subprocess.Popen([str(a) for a in argv], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return subprocess.Popen([str(a) for a in argv], env=env, stdout=log, stderr=log, cwd=cwd)


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL and reap: the process gets no chance to clean up (the chaos harness's crash)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def wait_http(url: str, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    """Waits until `url` answers 2xx. Raises RuntimeError if `proc` exits first or the
    time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")
        time.sleep(0.1)


def wait_log(path: Path, needle: bytes, timeout: float, proc: subprocess.Popen) -> bytes:
    """Waits until the log at `path` holds `needle`; returns the log. Raises RuntimeError if
    `proc` exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_bytes() if path.exists() else b""
        if needle in text:
            return text
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; see {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{needle.decode()!r} not in {path} after {timeout:.0f} s")
        time.sleep(0.05)


class Moto:
    """The AWS emulator (moto's standalone server) on a free loopback port.

    `command` is how to run it without its address arguments: the `moto_server` script of
    a virtualenv, or `[python, emulator.py]` for a patched server; `-H 127.0.0.1 -p PORT`
    is added here. Use as a context manager, or call close()."""

    def __init__(self, command: Sequence[str] | str | Path, log_path: Path, timeout: float = 60) -> None:
        from .ports import free_port, loopback_url

        argv = [command] if isinstance(command, (str, Path)) else list(command)
        self.port = free_port()
        self.url = loopback_url(self.port)
        self.log_path = Path(log_path)
        self.proc = start([*argv, "-H", "127.0.0.1", "-p", str(self.port)], self.log_path)
        try:
            wait_http(f"{self.url}/moto-api/data.json", timeout, self.proc)
        except RuntimeError as err:
            self.close()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"moto did not start: {err}\n{tail}") from None

    def close(self) -> None:
        stop(self.proc, 5)

    def __enter__(self) -> "Moto":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def service_binary() -> Path:
    """The image-service binary the checks run: $IMAGE_SERVICE_BIN, else the debug build in
    $CARGO_TARGET_DIR (default ~/.cache/image-service/target, as scripts/test builds it)."""
    explicit = os.environ.get("IMAGE_SERVICE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/image-service/target")
    return Path(target) / "debug" / "image-service"


def tail_logs(logs: Mapping[str, Path], lines: int) -> str:
    """The last `lines` lines of each named log, for a failure message."""
    parts = []
    for name, path in logs.items():
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        parts.append(f"--- {name} (last {lines} lines)\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)
