"""Plumbing the local servers share: a loopback WSGI server that stops at once, fault injection, a request log.

``LocalWebex`` and ``LocalGraph`` (and the web demo's page) are ``LoopbackServer`` subclasses: they implement
``handle(request)`` and ``fault_response(fault)``; the base class serves them on 127.0.0.1 in a thread,
answers injected faults, and records every request.

Stopping is immediate: socketserver's ``serve_forever`` notices ``shutdown()`` only at its next poll, so
each stop cost up to one poll interval (50 ms × every server of every test). Our loop waits on the listening
socket *and* a wake-up pipe, and ``stop()`` writes to the pipe.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

logger = logging.getLogger(__name__)


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``remaining`` requests whose method and path match.

    ``status`` answers with that error (``retry_after`` adds the header); ``behaviour`` instead lets the
    request through and tells the server how to misbehave while handling it (e.g. Graph's
    ``"ignore_write"``). ``method`` may be ``"*"``; ``path_regex`` is searched in the request path.
    """

    method: str
    path_regex: str
    status: int | None = None
    remaining: int = 1
    retry_after: str | None = None
    message: str | None = None
    behaviour: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.remaining > 0 and self.method in ("*", method)
                and re.search(self.path_regex, path) is not None)


@dataclass(frozen=True)
class LoggedRequest:
    """One request a local server answered: what was asked and the status it got.

    ``json`` is the JSON body (None for other bodies); ``form`` and ``uploads`` (file names) describe a
    multipart body; ``headers`` has the Authorization header redacted.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    uploads: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)       # when it was answered (epoch seconds)


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request (the server keeps its own request log); errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip access-log lines."""


class _Serving:
    """A werkzeug server run by a loop that a pipe wakes, so stopping never waits for a poll."""

    def __init__(self, server: BaseWSGIServer, name: str):
        self.server = server
        self._stopping = False
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.server, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self._stopping:
                for key, _events in selector.select():
                    if key.fileobj is self.server and not self._stopping:
                        # What serve_forever does per ready socket: accept, then a thread handles it.
                        self.server._handle_request_noblock()

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=5)
        self.server.server_close()
        os.close(self._wake_read)
        os.close(self._wake_write)


def serve_wsgi(app: Callable, host: str = "127.0.0.1", port: int = 0, *, name: str = "local-server",
               quiet: bool = True) -> _Serving:
    """Serve a WSGI app on ``host:port`` (0 = a free port) in a daemon thread; ``.stop()`` returns at once."""
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler if quiet else None)
    return _Serving(server, name)


class LoopbackServer(ABC):
    """A local API server: lifecycle, fault injection and request log shared by the local Webex and Graph.

    Subclasses implement ``handle(request) -> Response`` and ``fault_response(fault) -> Response``; they may
    set ``request_class`` (e.g. a larger upload limit) and ``fault_behaviours`` (what ``behaviour`` means).
    """

    name = "local-server"
    request_class: type[Request] = Request
    fault_behaviours: frozenset[str] = frozenset()

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._serving: _Serving | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, *, quiet: bool = True):
        """Serve on ``host:port`` (0 = a free port) in a background thread; returns self."""
        if self._serving is None:
            self._serving = serve_wsgi(self.wsgi, self.host, port, name=self.name, quiet=quiet)
        return self

    def stop(self) -> None:
        """Stop serving (at once: no poll interval to wait for)."""
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port being served (after start())."""
        if self._serving is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._serving.server.server_port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- faults ------------------------------------------------------------------------------

    def inject_fault(self, method: str, path_regex: str, status: int | None = None, *, count: int = 1,
                     retry_after: int | str | None = None, message: str | None = None,
                     behaviour: str | None = None) -> Fault:
        """Misbehave on the next ``count`` requests matching ``method`` (or ``"*"``) and ``path_regex``.

        With ``status`` they are answered with that error in the API's own error shape (``retry_after``
        seconds in a Retry-After header, ``message`` in the body); with ``behaviour`` (one of the
        server's ``fault_behaviours``) they are handled, but wrongly.
        """
        if (status is None) == (behaviour is None):
            raise ValueError("give exactly one of status or behaviour")
        if behaviour is not None and behaviour not in self.fault_behaviours:
            raise ValueError(f"behaviour must be one of {sorted(self.fault_behaviours)}")
        fault = Fault(method.upper(), path_regex, status, count,
                      None if retry_after is None else str(retry_after), message, behaviour)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, counted as used."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ---- request log -------------------------------------------------------------------------

    def requests_matching(self, method: str | None = None, path_regex: str | None = None) -> list[LoggedRequest]:
        """Logged requests, oldest first, filtered by method and a regex searched in the path."""
        with self._lock:
            log = list(self.requests)
        return [entry for entry in log if (method is None or entry.method == method)
                and (path_regex is None or re.search(path_regex, entry.path))]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- WSGI --------------------------------------------------------------------------------

    @abstractmethod
    def handle(self, request: Request) -> Response:
        ...

    @abstractmethod
    def fault_response(self, fault: Fault) -> Response:
        ...

    def internal_error(self, request: Request) -> Response:
        """Answer for a bug in the fake itself (it is logged with its traceback)."""
        return Response("Internal error in the local server.", status=500, content_type="text/plain")

    def wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = self.request_class(environ)
        fault = self.take_fault(request.method, request.path)
        try:
            if fault is not None and fault.status is not None:
                response = self.fault_response(fault)
            else:
                request.environ["fakes.fault"] = fault    # a behaviour fault, for handle() to apply
                response = self.handle(request)
        except Exception:
            logger.exception("%s failed on %s %s", self.name, request.method, request.path)
            response = self.internal_error(request)
        self._record(request, response)
        # An upload's temporary file is closed now, not when the collector finds it (a ResourceWarning then, in
        # whichever test runs at that moment).
        request.close()
        return response(environ, start_response)

    def _record(self, request: Request, response: Response) -> None:
        headers = dict(request.headers)
        if "Authorization" in headers:
            headers["Authorization"] = "<redacted>"
        multipart = request.mimetype == "multipart/form-data"
        entry = LoggedRequest(
            method=request.method, path=request.path, query=request.args.to_dict(flat=True),
            status=response.status_code, json=request.get_json(silent=True) if request.is_json else None,
            form=request.form.to_dict(flat=True) if multipart else {},
            uploads=tuple(upload.filename for upload in request.files.values()) if multipart else (),
            headers=headers)
        with self._lock:
            self.requests.append(entry)


def behaviour_of(request: Request) -> str | None:
    """The behaviour fault armed for this request, if any (see ``LoopbackServer.inject_fault``)."""
    fault = request.environ.get("fakes.fault")
    return fault.behaviour if fault is not None else None
