"""The fault proxies between the service and what it depends on.

- `HttpFaultProxy` sits in front of the AWS emulator (moto speaks plain HTTP/1.1). It
  reads each request, so a fault can pick an API call: answer S3 PutObject with S3's
  `503 SlowDown`, SQS DeleteMessage / DeleteMessageBatch with a throttling error (or
  a batch whose every entry failed), SNS Publish with `Throttling`, each in its
  service's documented error format so the SDK classifies it as retryable. It can
  also add latency, reset connections and blackhole everything for a while (requests
  are read and never answered; when the window ends the held connections are reset).
- `TcpFaultProxy` sits in front of Postgres: bytes pass through untouched until it
  blackholes (holds everything) or resets every connection.

moto keeps its state in memory, so the emulator itself is never restarted: the proxy
gives the same outages with the state kept. Small code of our own on the standard
library's threads; one thread per direction or connection is plenty at this load.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from harness.ports import free_port


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _reset(sock: socket.socket) -> None:
    """Closes with an RST instead of a FIN (SO_LINGER 0), as a crashed peer's kernel does.

    close() alone does nothing on the wire while another thread is blocked in recv() on
    the socket (that call holds the kernel's socket open): the peer would wait forever
    for an answer that no thread will forward. shutdown(SHUT_RD) wakes that recv first;
    the RST goes out when the last reference is dropped."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


class _Listener:
    """A loopback listener whose accepted connections go to `serve` on their own thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.port = free_port()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(512)
        self._serve = serve
        self.conns: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.down_until = 0.0  # blackholed until this instant
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def blackholed(self) -> bool:
        return time.time() < self.down_until

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            self._track(client)
            threading.Thread(target=self._run, args=(client,), daemon=True).start()

    def _run(self, client: socket.socket) -> None:
        try:
            self._serve(client)
        except OSError:
            pass
        finally:
            self._untrack(client)
            _shut(client)

    def _track(self, *socks: socket.socket) -> None:
        with self.lock:
            self.conns.update(socks)

    def _untrack(self, *socks: socket.socket) -> None:
        with self.lock:
            self.conns.difference_update(socks)

    def hold(self) -> None:
        """Waits out a blackhole window (the caller then resets its connection)."""
        while self.blackholed:
            time.sleep(0.05)

    def reset_all(self) -> int:
        """RSTs every open connection; returns how many."""
        with self.lock:
            victims = list(self.conns)
            self.conns.clear()
        for s in victims:
            _reset(s)
        return len(victims)

    def blackhole(self, seconds: float) -> None:
        """Nothing gets an answer for `seconds`; then every connection is reset."""
        self.down_until = time.time() + seconds
        time.sleep(seconds)
        self.reset_all()

    def close(self) -> None:
        self.server.close()
        self.reset_all()


# --- the HTTP side ------------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    head: bytes  # request line and headers, as forwarded
    body: bytes  # as received (chunked framing kept)

    def decoded_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            return self.body
        out, rest = bytearray(), self.body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        return bytes(out)


def _read_head(reader) -> tuple[bytes, list[bytes]] | None:
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # stray CRLF between requests
            return b"".join(lines) + line, lines
        lines.append(line)


def _headers(lines: list[bytes]) -> dict[str, str]:
    out = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def _read_body(reader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = reader.readline(65537)
            parts.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the blank line
                    trailer = reader.readline(65537)
                    parts.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            parts.append(reader.read(size + 2))
    length = int(headers.get("content-length", "0") or 0)
    return reader.read(length) if length else b""


def read_request(reader, send_continue: Callable[[], None]) -> Request | None:
    """One whole request. A client that sent `Expect: 100-continue` waits for a 100
    before its body: the proxy answers it and forwards the request without the header."""
    got = _read_head(reader)
    if got is None:
        return None
    head, lines = got
    method, target, _ = lines[0].decode("latin-1").split(" ", 2)
    headers = _headers(lines)
    if headers.get("expect", "").lower() == "100-continue":
        send_continue()
        lines = [ln for ln in lines if not ln.lower().startswith(b"expect:")]
        head = b"".join(lines) + b"\r\n"
    body = _read_body(reader, headers)
    return Request(method, target, headers, head, body)


def read_response(reader, method: str) -> tuple[bytes, bool]:
    """One whole response (skipping 1xx), and whether the connection closes after it."""
    while True:
        got = _read_head(reader)
        if got is None:
            raise ConnectionError("upstream closed")
        head, lines = got
        status = int(lines[0].split(b" ")[1])
        if 100 <= status < 200:
            continue
        headers = _headers(lines)
        close = headers.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            return head, close
        if "content-length" in headers or headers.get("transfer-encoding", "").lower() == "chunked":
            return head + _read_body(reader, headers), close
        return head + reader.read(), True  # delimited by the close


def _response(status: str, content_type: str, body: bytes, extra: dict[str, str] | None = None) -> bytes:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)), "x-amzn-RequestId": str(uuid.uuid4()),
               "x-amz-request-id": uuid.uuid4().hex[:16].upper(), **(extra or {})}
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


# The operations a fault can pick, and the error each answers with.
def is_s3_put_object(r: Request) -> bool:
    """PutObject (and UploadPart): a PUT on an object key, not a copy, on the path-style URL."""
    path = r.target.split("?")[0].strip("/")
    return r.method == "PUT" and "/" in path and "x-amz-copy-source" not in r.headers and "x-amz-target" not in r.headers


def sqs_target(r: Request) -> str:
    return r.headers.get("x-amz-target", "")


def is_sqs_delete(r: Request) -> bool:
    return sqs_target(r) in ("AmazonSQS.DeleteMessage", "AmazonSQS.DeleteMessageBatch")


def is_sns_publish(r: Request) -> bool:
    return r.method == "POST" and b"Action=Publish" in r.decoded_body()[:4096] and "x-amz-target" not in r.headers


def s3_slow_down(_: Request) -> bytes:
    """S3's documented throttling answer (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)."""
    rid = uuid.uuid4().hex[:16].upper()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            f"<Message>Please reduce your request rate.</Message><RequestId>{rid}</RequestId>"
            f"<HostId>chaos</HostId></Error>").encode()
    return _response("503 Slow Down", "application/xml", body)


def sqs_delete_error(r: Request) -> bytes:
    """SQS's JSON protocol: a throttling error for DeleteMessage; for DeleteMessageBatch,
    half the time that, half the time a 200 whose every entry failed (SenderFault false:
    the caller may try again)."""
    if sqs_target(r).endswith("Batch") and random.random() < 0.5:
        try:
            entries = json.loads(r.decoded_body()).get("Entries", [])
        except ValueError:
            entries = []
        failed = [{"Id": e.get("Id"), "SenderFault": False, "Code": "InternalError",
                   "Message": "We encountered an internal error. Please try again."} for e in entries]
        body = json.dumps({"Successful": [], "Failed": failed}).encode()
        return _response("200 OK", "application/x-amz-json-1.0", body)
    body = json.dumps({"__type": "com.amazon.coral.availability#ThrottlingException",
                       "message": "Rate exceeded"}).encode()
    return _response("400 Bad Request", "application/x-amz-json-1.0", body,
                     {"x-amzn-query-error": "ThrottlingException;Sender"})


def sns_throttled(_: Request) -> bytes:
    """SNS's query-protocol error document: `Throttling` (400) or `InternalError` (500)."""
    code, status, kind, message = random.choice([
        ("Throttling", "400 Bad Request", "Sender", "Rate exceeded"),
        ("InternalError", "500 Internal Server Error", "Receiver", "Request could not be completed"),
    ])
    body = (f'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>{kind}</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
    return _response(status, "text/xml", body)


@dataclass
class Fault:
    """While active, answers a share of the matching requests itself (`answer`), delays
    them (`delay`) or resets their connection (`reset`)."""

    name: str
    match: Callable[[Request], bool]
    share: float
    until: float
    answer: Callable[[Request], bytes] | None = None
    delay: tuple[float, float] | None = None
    reset: bool = False


@dataclass
class Counts:
    seen: dict[str, int] = field(default_factory=dict)  # operation -> requests
    injected: dict[str, int] = field(default_factory=dict)  # fault name -> hits


def operation(r: Request) -> str:
    """A short name of the call, for the counts (and to check what moto receives)."""
    if sqs_target(r):
        return sqs_target(r)
    if is_sns_publish(r):
        return "SNS.Publish"
    if is_s3_put_object(r):
        return "S3.PutObject"
    return f"{r.method}"


class HttpFaultProxy(_Listener):
    """Forwards 127.0.0.1:self.port to the emulator, request by request."""

    def __init__(self, target_port: int, rng: random.Random) -> None:
        self.target = ("127.0.0.1", target_port)
        self.rng = rng
        self.faults: list[Fault] = []
        self.counts = Counts()
        self.in_flight: dict[int, tuple[str, str, float]] = {}  # thread -> (operation, target, since)
        super().__init__(self._serve_http)

    def stuck(self, older_than: float) -> list[str]:
        """Requests forwarded to the emulator and not yet answered, oldest first."""
        now = time.time()
        with self.lock:
            items = sorted(self.in_flight.values(), key=lambda v: v[2])
        return [f"{op} {target[:80]} for {now - since:.0f} s" for op, target, since in items if now - since > older_than]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def _pick(self, r: Request) -> Fault | None:
        now = time.time()
        with self.lock:
            self.faults = [f for f in self.faults if f.until > now]
            op = operation(r)
            self.counts.seen[op] = self.counts.seen.get(op, 0) + 1
            for f in self.faults:
                if f.match(r) and self.rng.random() < f.share:
                    self.counts.injected[f.name] = self.counts.injected.get(f.name, 0) + 1
                    return f
        return None

    def _serve_http(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        upstream = up_reader = None
        try:
            while True:
                if self.blackholed:
                    self.hold()
                    _reset(client)
                    return
                request = read_request(reader, lambda: client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"))
                if request is None:
                    return
                if self.blackholed:
                    self.hold()
                    _reset(client)
                    return
                fault = self._pick(request)
                if fault is not None:
                    if fault.reset:
                        _reset(client)
                        return
                    if fault.answer is not None:
                        client.sendall(fault.answer(request))
                        continue
                    if fault.delay is not None:
                        time.sleep(self.rng.uniform(*fault.delay))
                if upstream is None:
                    upstream = socket.create_connection(self.target)
                    self._track(upstream)
                    up_reader = upstream.makefile("rb")
                me = threading.get_ident()
                with self.lock:
                    self.in_flight[me] = (operation(request), request.target, time.time())
                try:
                    upstream.sendall(request.head + request.body)
                    response, close = read_response(up_reader, request.method)
                finally:
                    with self.lock:
                        self.in_flight.pop(me, None)
                client.sendall(response)
                if close or request.headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError, ConnectionError):
            return
        finally:
            if upstream is not None:
                self._untrack(upstream)
                _shut(upstream)


class TcpFaultProxy(_Listener):
    """Forwards 127.0.0.1:self.port to 127.0.0.1:target_port byte for byte."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        super().__init__(self._serve_tcp)

    def _serve_tcp(self, client: socket.socket) -> None:
        if self.blackholed:
            self.hold()
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)  # the server is down: as refused
            return
        self._track(upstream)
        other = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
        other.start()
        self._pipe(client, upstream)
        other.join()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.blackholed:
                    self.hold()
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._untrack(src, dst)
            for s in (src, dst):
                _shut(s)
