"""A local HTTP server that records the webhook POSTs it gets (the test's Slack)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook:
    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.status, self.delay_s = status, delay_s
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                time.sleep(hook.delay_s)
                hook.paths.append(self.path)
                hook.bodies.append(body)
                self.send_response(hook.status)
                if 300 <= hook.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:  # a followed redirect would arrive here
                hook.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/services/T000/B000/secret-token") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]

    def wait_for(self, count: int, deadline_s: float = 30.0) -> list[str]:
        end = time.monotonic() + deadline_s
        while len(self.bodies) < count and time.monotonic() < end:
            time.sleep(0.05)
        return self.texts()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
