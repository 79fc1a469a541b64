"""``LocalGraph``: a loopback Microsoft Graph v1.0 for tests and demos, on the shared server plumbing.

A real HTTP server on 127.0.0.1 that the real msgraph-sdk talks to (``base_url`` like
``http://127.0.0.1:PORT/v1.0``). It implements the slice of Graph the bot uses, with the
semantics documented in the Graph reference (see docs in ``/work/shared/reference``):

* ``keyCredentials[].key`` is only returned on a SINGLE object GET whose ``$select``
  names ``keyCredentials``; lists and unselected GETs return ``"key": null``. The key of
  ``Sign`` entries is never returned (UNCONFIRMED in the notes; we chose the safe side).
* ``$select``, ``$filter`` (``eq``, ``in``, ``startswith`` joined by ``and``), ``$top`` and
  ``@odata.nextLink`` paging (default page 100, ``$top`` capped at 999 like Graph).
* Alternate keys ``/servicePrincipals(appId='..')`` and ``/applications(appId='..')``.
* PATCH of ``keyCredentials`` replaces the collection; echoed entries whose ``key`` is
  null keep their stored key; ``passwordCredentials`` may only shrink (new ones give
  ``Request_BadRequest``, as Graph does).
* ``addTokenSigningCertificate`` creates a Sign + Verify key pair and a passwordCredential
  sharing one customKeyIdentifier (= SHA-1 thumbprint) from a real RSA-2048 certificate.
* ``403 Authorization_RequestDenied`` (the body shape of the recorded Azure CLI cassette)
  when the scenario's permissions don't cover a call.
* Faults (``inject_fault``: a status + Retry-After, or a write that is silently ignored or lossy),
  a delay before new credentials become visible, the request log and per-request latency.
* Per-app federation metadata at ``/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid=``.
  Which certificates it publishes is a scenario option (``metadata_certificates``):
  ``all`` (default: every unexpired signing cert, the active one first, matching the public
  rollover capture cited in the notes) or ``active_only``. Real behaviour is UNCONFIRMED.
  The fake metadata is not signed (no ds:Signature).

Run it by hand: ``python -m fakes.graph --scenario fakes/scenarios/demo-tenant.yaml --port 8089``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from pathlib import Path
from typing import Iterable, Optional

from werkzeug.wrappers import Request, Response

from fakes.graph.model import DEFAULT_PAGE_SIZE, DEFAULT_PERMISSIONS, GraphHttpError, error_body
from fakes.graph.routes import GraphRoutes
from fakes.graph.scenario import load_scenario, seed, tenant_settings
from fakes.server import Fault, LoopbackServer, behaviour_of

_METADATA_PATH = re.compile(r"^/([^/]+)/federationmetadata/2007-06/federationmetadata\.xml$")
_FAULT_CODES = {429: ("TooManyRequests", "Please retry again later."),
                403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
                404: ("Request_ResourceNotFound", "Resource does not exist.")}


class LocalGraph(LoopbackServer, GraphRoutes):
    """In-memory tenant + HTTP server. Use as a context manager or call ``start``/``stop``."""

    name = "local-graph"
    fault_behaviours = frozenset({"ignore_write", "drop_existing_key", "drop_existing_password"})

    def __init__(self, tenant_id: Optional[str] = None, permissions: Iterable[str] = DEFAULT_PERMISSIONS,
                 page_size: int = DEFAULT_PAGE_SIZE, metadata_certificates: str = "all",
                 credential_visibility_delay: float = 0.0, latency: float = 0.0):
        LoopbackServer.__init__(self)
        self._init_tenant(tenant_id, permissions, page_size, metadata_certificates, credential_visibility_delay,
                          latency)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1.0"

    @classmethod
    def from_scenario(cls, path: str | Path, now: Optional[dt.datetime] = None, **overrides) -> "LocalGraph":
        """Build a tenant from a YAML/JSON scenario with relative dates (see scenarios/demo-tenant.yaml)."""
        return cls.from_scenario_data(load_scenario(path), now=now, **overrides)

    @classmethod
    def from_scenario_data(cls, data: dict, now: Optional[dt.datetime] = None, **overrides) -> "LocalGraph":
        graph = cls(**{**tenant_settings(data), **overrides})
        seed(graph, data, now)
        return graph

    # ------------------------------------------------------------------ WSGI

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/v1.0/"):
            return self._handle_graph(request)
        if (match := _METADATA_PATH.match(request.path)) and request.method in ("GET", "HEAD"):
            xml = self.federation_metadata(request.args.get("appid", "")) if match.group(1) == self.tenant_id else None
            if xml is not None:
                return Response(xml, content_type="application/samlmetadata+xml")
            return Response("Unknown tenant or application.", status=404, content_type="text/plain")
        return Response("Not found.", status=404, content_type="text/plain")

    def fault_response(self, fault: Fault) -> Response:
        """An injected failure with Graph's error body (TooManyRequests, ServiceUnavailable, ...)."""
        if self.latency:
            time.sleep(self.latency)
        code, message = _FAULT_CODES.get(fault.status, ("ServiceUnavailable", "Please retry again later."))
        headers = {"request-id": str(uuid.uuid4())}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        return _graph_response(fault.status, error_body(code, fault.message or message), headers)

    def _handle_graph(self, request: Request) -> Response:
        query = dict(request.args.items())
        body = request.get_json(silent=True) if request.data else None
        if self.latency:
            time.sleep(self.latency)
        headers = {"request-id": str(uuid.uuid4())}
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _graph_response(401, error_body("InvalidAuthenticationToken", "Access token is empty."), headers)
        with self._lock:
            try:
                status, payload = self._route(request.method, request.path, query, body, behaviour_of(request))
            except GraphHttpError as error:
                headers.update(error.headers)
                status, payload = error.status, error_body(error.code, error.message)
            # Encoded under the lock: a payload shares lists with the tenant's objects (no copy of 999 apps
            # per page), and a concurrent PATCH must not change them half-way through the encoding.
            return _graph_response(status, payload, headers)


def _graph_response(status: int, payload: object, headers: dict[str, str]) -> Response:
    if payload is None:
        return Response(status=status, headers=headers)
    return Response(json.dumps(payload), status=status, headers=headers,
                    content_type="application/json;odata.metadata=minimal;charset=utf-8")
