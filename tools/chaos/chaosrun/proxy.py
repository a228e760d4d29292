"""A TCP proxy in front of the emulator that can be cut off, as during a restart.

moto keeps its state in memory, so a real restart would erase the bucket and queues;
the proxy gives the same outage with the state kept."""

from __future__ import annotations

import socket
import threading
import time

from harness.ports import free_port


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Proxy:
    """Forwards 127.0.0.1:self.port to 127.0.0.1:target_port until outage() cuts it off."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.down = threading.Event()
        self.conns: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(256)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            if self.down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _shut(s)
                s.close()

    def outage(self, seconds: float) -> None:
        """Drops every open connection and refuses new ones for `seconds`."""
        self.down.set()
        with self.lock:
            for s in self.conns:
                _shut(s)
            self.conns.clear()
        time.sleep(seconds)
        self.down.clear()

    def outage_in_background(self, seconds: float) -> None:
        threading.Thread(target=self.outage, args=(seconds,), daemon=True).start()

    def close(self) -> None:
        self.server.close()
