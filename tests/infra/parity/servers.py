"""The local stand-ins the parity test starts for itself, so the shared servers are never
touched: a test CA, a Postgres cluster with TLS only (initdb into a temporary directory), and a
Redis that speaks TLS only.

Postgres runs as the `postgres` system user when the test runs as root (initdb refuses root).
Its superuser is named and passworded like RDS's master user, and pg_hba accepts only TLS
connections with SCRAM passwords from 127.0.0.1, as rds.force_ssl does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.ports import free_port


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kwargs)


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    """A CA and a server certificate for localhost and 127.0.0.1, both P-256."""
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=image-service parity test CA"])
    _run(["openssl", "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"])
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
          "-out", str(cert), "-days", "2", "-extfile", str(ext)])
    for path in (ca, cert):
        path.chmod(0o644)
    return Certs(ca, cert, key)


def pg_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        return Path(_run([found, "--bindir"]).stdout.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise RuntimeError("no Postgres server binaries (initdb) found")
    return versions[-1]


class Postgres:
    """A throwaway TLS-only cluster: `master`/`password` is its superuser, `database` exists."""

    def __init__(self, certs: Certs, master: str, password: str, database: str):
        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="parity-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.master, self.password, self.database = master, password, database
        as_postgres: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            as_postgres = ["runuser", "-u", "postgres", "--"]
        self.as_postgres = as_postgres
        tls = self.root / "tls"
        tls.mkdir()
        for path in (certs.cert, certs.key):
            shutil.copy(path, tls / path.name)
        (tls / certs.key.name).chmod(0o600)
        pwfile = self.root / "pw"
        pwfile.write_text(password + "\n")
        if as_postgres:
            for path in (tls, *tls.iterdir(), pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run([*as_postgres, str(self.bindir / "initdb"), "-D", str(self.data), "-U", master, f"--pwfile={pwfile}",
              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                f"ssl = on\nssl_cert_file = '{tls / certs.cert.name}'\nssl_key_file = '{tls / certs.key.name}'\n"
                "fsync = off\n"
            )
        # TLS or nothing, as rds.force_ssl = 1; the local socket is the test's own back door.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 reject\n"
        )
        self.log = self.root / "postgres.log"
        _run([*as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])
        self.psql_local("postgres", f'CREATE DATABASE "{database}"')

    def psql_local(self, database: str, sql: str) -> str:
        """As the superuser over the local socket (setup and inspection only)."""
        return _run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", str(self.root), "-p", str(self.port),
                     "-U", self.master, "-d", database, "-c", sql]).stdout

    def psql_tls(self, user: str, password: str, ca: Path, sql: str) -> subprocess.CompletedProcess:
        """As `user` over TLS, verify-full against `ca`, as the services connect."""
        env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="verify-full", PGSSLROOTCERT=str(ca))
        return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "localhost", "-p", str(self.port),
                               "-U", user, "-d", self.database, "-c", sql], env=env, capture_output=True, text=True, timeout=60)

    def close(self) -> None:
        subprocess.run([*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """redis-server with TLS only (port 0 turns plain TCP off)."""

    def __init__(self, certs: Certs, log: Path):
        self.port = free_port()
        self.ca = certs.ca
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(certs.cert), "--tls-key-file", str(certs.key), "--tls-ca-cert-file", str(certs.ca),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.command("PING").startswith("+PONG"):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server with TLS did not start; see {log}")
                time.sleep(0.1)

    def command(self, *words: str) -> str:
        """One command over TLS, verified against the test CA; the raw RESP answer."""
        context = ssl.create_default_context(cafile=str(self.ca))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(("*%d\r\n" % len(words) + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)).encode())
                chunks = []
                tls.settimeout(2)
                while True:
                    try:
                        data = tls.recv(65536)
                    except socket.timeout:
                        break
                    if not data:
                        break
                    chunks.append(data)
                    if data.endswith(b"\r\n"):
                        break
                return b"".join(chunks).decode(errors="replace")

    def info(self, section: str) -> dict[str, str]:
        text = self.command("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
