"""Free TCP ports on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the kernel's choice for an ephemeral bind).

    Another process may take it before the caller binds it; on a test machine that is
    rare enough, and the caller's readiness wait fails loudly when it happens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_url(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"
