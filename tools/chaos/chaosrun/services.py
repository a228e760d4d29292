"""The servers a chaos run starts for itself, so that it may stop and restart them:
a Postgres cluster in a temporary directory, a Redis that keeps nothing on disk, and a
small filesystem under the local object store that can be filled up.

Never the machine's own Postgres (5432) or Redis (6379): those serve everyone else."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import procs
from harness.ports import free_port

PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Postgres:
    """A throwaway cluster on a free port, trust authentication, socket in its own dir."""

    def __init__(self, work: Path) -> None:
        # Its own directory, owned by the user the server runs as (the run's work
        # directory is root's and private); the log is copied there on close.
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data, self.socket_dir, self.log = self.root / "data", self.root / "sock", self.root / "postgres.log"
        self.work = work
        self.port = free_port()
        self.restarts = 0
        try:
            self.socket_dir.mkdir()
            if os.geteuid() == 0:
                for path in (self.root, self.socket_dir):
                    shutil.chown(path, "postgres")
            self._run([PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"])
            self.start()
        except BaseException:
            self.close()
            raise

    def _run(self, argv: list) -> None:
        done = subprocess.run(_as_postgres() + [str(a) for a in argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, cwd="/")
        if done.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}\n{log}")

    def start(self) -> None:
        # fsync off: the run restarts the server with a clean (fast) shutdown, never a crash.
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=200")
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30", "start"])

    def stop(self) -> None:
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop"])

    def restart(self, down: float) -> None:
        """Stops (fast: open sessions are ended), stays down `down` seconds, starts again."""
        self.stop()
        time.sleep(down)
        self.start()
        self.restarts += 1

    def url(self, port: int | None = None, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{database}"

    def create_database(self, name: str) -> None:
        subprocess.run(["psql", self.url(), "-qc", f"CREATE DATABASE {name}"], check=True, stdout=subprocess.DEVNULL)

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except (RuntimeError, OSError):
                pass
        if self.log.exists():
            shutil.copy(self.log, self.work / "postgres.log")
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """redis-server on a free port, nothing saved: a restart comes back empty."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.log = work / "redis.log"
        self.outages = 0
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.proc = procs.start(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"], self.log, append=True)
        deadline = time.time() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start; see {self.log}")
            time.sleep(0.05)

    def outage(self, seconds: float) -> None:
        procs.kill(self.proc)
        time.sleep(seconds)
        self.start()
        self.outages += 1

    def close(self) -> None:
        if self.proc:
            procs.kill(self.proc)


class SmallDisk:
    """A tmpfs of `size_mb` mounted at `path` (the local object store). fill() takes every
    free byte with a filler file, so writes fail with ENOSPC; drain() gives them back.

    Mounting needs CAP_SYS_ADMIN (root in this container has it); where it is refused,
    `SmallDisk.try_mount` returns None and the run says the fault was not injected."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True,
                       capture_output=True)
        self.filler = path / ".chaos-filler"
        self.fills = 0

    @classmethod
    def try_mount(cls, path: Path, size_mb: int) -> "SmallDisk | None":
        try:
            return cls(path, size_mb)
        except (subprocess.CalledProcessError, OSError):
            return None

    def fill(self) -> None:
        with open(self.filler, "wb", buffering=0) as out:
            try:
                free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
                if free > 0:
                    os.posix_fallocate(out.fileno(), 0, free)
            except OSError:
                pass
            chunk = b"\0" * 4096
            try:
                while True:  # whatever fallocate left, block by block
                    out.write(chunk)
            except OSError:
                pass
        self.fills += 1

    def drain(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        self.drain()
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
