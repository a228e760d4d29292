"""The API client: uploads and job look-ups over keep-alive connections."""

from __future__ import annotations

import http.client
import json
import threading
import time


class Api:
    """Uploads through the API, one keep-alive connection per thread."""

    def __init__(self, port: int, key: str | None) -> None:
        self.port = port
        self.key = key
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.port != self.port:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        headers = {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if content_type:
            headers["Content-Type"] = content_type
        last: Exception | None = None
        for attempt in range(5):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, data
            except (OSError, http.client.HTTPException) as err:
                last = err
                conn.close()
                self.local.conn = None
                time.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"{method} {path}: {last}")

    def upload(self, body: bytes, content_type: str = "image/jpeg") -> str:
        status, data = self.request("POST", "/v1/images", body, content_type)
        if status != 202:
            raise RuntimeError(f"upload answered {status}: {data[:300]!r}")
        return json.loads(data)["id"]

    def job(self, job_id: str) -> dict:
        status, data = self.request("GET", f"/v1/jobs/{job_id}")
        return json.loads(data) if status == 200 else {"status": f"http-{status}"}
