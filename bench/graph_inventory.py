"""Benchmark: EntraClient.inventory() of N SAML apps against the loopback Graph, with latency.

Seeds N SAML enterprise apps (default 5,000; each with a portal-style signing certificate, so
customKeyIdentifier is the thumbprint, plus an app registration), adds ``--latency-ms`` (20)
to every Graph request, runs ``inventory()`` through the real msgraph-sdk and prints one line:
requests made, the median wall time, and the floor. The local Graph runs in its own process, as Graph's
servers do (in this one, its page building would compete with the client for the interpreter).

The floor is what Graph's paging allows: ceil(N / 999) servicePrincipal pages ($top max 999)
+ ceil(N / 999) application pages. The application pages are unavoidable: the
signed-request setting, verification certificates and client secrets live on the app
registration, which the servicePrincipal list cannot $expand. Single-object
``$select=keyCredentials`` GETs (limited to 150/min/tenant) are avoidable when
customKeyIdentifier carries the thumbprint, so the floor counts none.

The local Graph answers repeated reads from memory (``ReplayingGraph``): building and encoding a 999-app
page costs it ~25 ms of CPU on 2 cores, time real Graph spends on its own servers inside its latency, and
here it would stand in the client's figure. The first inventory (a warm-up, also of the client) fills it.

Besides the latency floor the line prints a measured floor: the simplest client doing the same 12
requests (httpx following both nextLink chains, one thread each, ``json.loads`` of every page), so the
distance to it is what the SDK and the conversion to dataclasses cost.

    python bench/graph_inventory.py [--apps 5000] [--latency-ms 20] [--page-size 999]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from werkzeug.wrappers import Request, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.graph import LocalGraph  # noqa: E402
from rollover.integrations.entra_client import APP_FIELDS, MAX_PAGE_SIZE, SP_LIST_FIELDS, EntraClient  # noqa: E402


class ReplayingGraph(LocalGraph):
    """The local Graph, answering a GET it has answered before from memory (after the same latency); any
    other request forgets every remembered answer. Only for this benchmark's read-only tenant."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._answers: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}

    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            self._answers.clear()
            return super().handle(request)
        remembered = self._answers.get(request.full_path)
        if remembered is None:
            response = super().handle(request)
            remembered = self._answers[request.full_path] = (
                response.status_code, list(response.headers.items()), response.get_data())
            return response
        time.sleep(self.latency)
        status, headers, body = remembered
        return Response(body, status=status, headers=headers)


def seed(graph: LocalGraph, apps: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    for index in range(apps):
        sp = graph.add_saml_app(f"SAML app {index:05d}")
        graph.add_signing_certificate(sp["id"], not_before=now - dt.timedelta(days=300),
                                      not_after=now + dt.timedelta(days=index % 1000 + 1), active=True)


def serve(apps: int, live: bool = False) -> None:
    """The local Graph in its own process, as Graph's servers are: its work does not share our interpreter.
    Reads commands from stdin: ``latency SECONDS``, ``clear``, ``count`` (prints requests and key selects)."""
    with (LocalGraph() if live else ReplayingGraph()) as graph:
        seed(graph, apps)
        print(graph.base_url, flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "latency":
                graph.latency = float(value)
            elif command == "clear":
                graph.clear_requests()
            elif command == "count":
                print(len(graph.requests), graph.single_object_key_selects, flush=True)


class GraphProcess:
    def __init__(self, apps: int, live: bool = False):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", "--apps", str(apps),
                                         *(["--live-graph"] if live else [])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self.process.stdout.readline().strip()

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def counts(self) -> tuple[int, int]:
        self.send("count")
        requests_made, key_selects = self.process.stdout.readline().split()
        return int(requests_made), int(key_selects)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    parser.add_argument("--rounds", type=int, default=3, help="inventories; the median wall time is reported")
    parser.add_argument("--live-graph", action="store_true",
                        help="the local Graph builds every answer again (its CPU time then counts in the figure)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.apps, args.live_graph)
    graph = GraphProcess(args.apps, args.live_graph)
    walls, floors = [], []
    try:
        with EntraClient(graph.base_url) as client:
            client.inventory(page_size=args.page_size)   # warm-up: SDK imports, connection, the Graph's answers
            graph.send(f"latency {args.latency_ms / 1000}")
            for _ in range(args.rounds):   # alternating, so a busy neighbour hits both alike
                graph.send("clear")
                started = time.perf_counter()
                inventory = client.inventory(page_size=args.page_size)
                walls.append(time.perf_counter() - started)
                requests_made, key_selects = graph.counts()
                floors.append(simplest_client(graph.base_url, args.page_size, args.apps > 15))
    finally:
        graph.close()
    wall, measured_floor = statistics.median(walls), statistics.median(floors)
    pages = math.ceil(args.apps / min(args.page_size, MAX_PAGE_SIZE))
    floor = 2 * pages if args.apps > 15 else pages + (1 if args.apps else 0)
    floor_seconds = floor * args.latency_ms / 1000
    print(f"graph_inventory: {len(inventory)} SAML apps, {requests_made} requests "
          f"({key_selects} single-object $select=keyCredentials), median wall of {args.rounds} {wall:.2f} s at "
          f"{args.latency_ms:g} ms/request (local Graph in its own process, "
          f"{'building every answer' if args.live_graph else 'replaying its answers'}); "
          f"floor {floor} requests ({pages} servicePrincipal pages + {floor - pages} application "
          f"{'pages' if args.apps > 15 else 'query'}), "
          f"floor latency {floor_seconds:.2f} s; simplest client (httpx + json.loads, both chains at once) "
          f"{measured_floor:.2f} s, {wall / measured_floor:.1f}x | ratio {wall / floor_seconds:.1f}")


def simplest_client(base_url: str, page_size: int, with_applications: bool) -> float:
    """Seconds for the floor's requests done the plainest way: follow each nextLink chain with httpx in its own
    thread and decode every page."""
    top = str(min(page_size, MAX_PAGE_SIZE))
    chains = [("servicePrincipals", {"$filter": "preferredSingleSignOnMode eq 'saml'",
                                     "$select": ",".join(SP_LIST_FIELDS), "$top": top})]
    if with_applications:
        chains.append(("applications", {"$select": ",".join(APP_FIELDS), "$top": top}))

    def follow(collection: str, params: dict | None) -> None:
        with httpx.Client(headers={"Authorization": "Bearer bench"}) as http:
            url = f"{base_url}/{collection}"
            while url:
                url = http.get(url, params=params).raise_for_status().json().get("@odata.nextLink")
                params = None

    threads = [threading.Thread(target=follow, args=chain) for chain in chains]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
