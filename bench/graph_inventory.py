"""Benchmark: EntraClient.inventory() of N SAML apps against the loopback Graph, with latency.

Seeds N SAML enterprise apps (default 5,000; each with a portal-style signing certificate, so
customKeyIdentifier is the thumbprint, plus an app registration), adds ``--latency-ms`` (20)
to every Graph request, runs ``inventory()`` through the real msgraph-sdk and prints one line:
requests made, wall time, and the floor.

The floor is what Graph's paging allows: ceil(N / 999) servicePrincipal pages ($top max 999)
+ ceil(N / 999) application pages. The application pages are unavoidable: the
signed-request setting, verification certificates and client secrets live on the app
registration, which the servicePrincipal list cannot $expand. Single-object
``$select=keyCredentials`` GETs (limited to 150/min/tenant) are avoidable when
customKeyIdentifier carries the thumbprint, so the floor counts none.

    python bench/graph_inventory.py [--apps 5000] [--latency-ms 20] [--page-size 999]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.graph import LocalGraph  # noqa: E402
from rollover.integrations.entra_client import MAX_PAGE_SIZE, EntraClient  # noqa: E402


def seed(graph: LocalGraph, apps: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    for index in range(apps):
        sp = graph.add_saml_app(f"SAML app {index:05d}")
        graph.add_signing_certificate(sp["id"], not_before=now - dt.timedelta(days=300),
                                      not_after=now + dt.timedelta(days=index % 1000 + 1), active=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    args = parser.parse_args()

    with LocalGraph() as graph:
        seed(graph, args.apps)
        with EntraClient(graph.base_url) as client:
            client.find_service_principal("SAML app 00000")   # warm-up: SDK imports, connection
            graph.clear_requests()
            graph.latency = args.latency_ms / 1000
            started = time.perf_counter()
            inventory = client.inventory(page_size=args.page_size)
            wall = time.perf_counter() - started
        requests_made = len(graph.requests)
        key_selects = graph.single_object_key_selects
    pages = math.ceil(args.apps / min(args.page_size, MAX_PAGE_SIZE))
    floor = 2 * pages if args.apps > 15 else pages + (1 if args.apps else 0)
    print(f"graph_inventory: {len(inventory)} SAML apps, {requests_made} requests "
          f"({key_selects} single-object $select=keyCredentials), wall {wall:.2f} s at {args.latency_ms:g} ms/request; "
          f"floor {floor} requests ({pages} servicePrincipal pages + {floor - pages} application "
          f"{'pages' if args.apps > 15 else 'query'}), floor latency {floor * args.latency_ms / 1000:.2f} s")


if __name__ == "__main__":
    main()
