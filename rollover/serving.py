"""``serve``'s HTTP server: werkzeug's, answering on a fixed pool of threads.

werkzeug's threaded server starts a thread per request, and each new thread opens its own database
connection: an acknowledgement then costs a thread start and a connection, and open files and memory
creep up with the traffic. Here a request is handed to one of ``threads`` long-lived threads, each keeping
its connection; a connection idle for ``IDLE_SECONDS`` is closed. That limit applies to each read, so
a client that trickles a byte every few seconds still holds its thread: like werkzeug's own server, this
one belongs behind a reverse proxy (which buffers requests) when it faces the internet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

SERVE_THREADS = 16
IDLE_SECONDS = 10.0


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"     # answers in HTTP/1.1; werkzeug still closes each connection after its answer
    timeout = IDLE_SECONDS            # applied to the connection's socket by socketserver


class PooledWSGIServer(BaseWSGIServer):
    multithread = True

    def __init__(self, host: str, port: int, app: Any, *, threads: int = SERVE_THREADS):
        super().__init__(host, port, app, handler=_Handler)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="rollover-http")

    def process_request(self, request, client_address) -> None:
        self.pool.submit(self._answer, request, client_address)

    def _answer(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)
