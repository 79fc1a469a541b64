"""``python -m fakes.graph [--scenario FILE] [--port 8089]``: the local Entra tenant standalone."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Optional

from fakes.graph.local import LocalGraph

DEMO_TENANT = Path(__file__).resolve().parents[1] / "scenarios" / "demo-tenant.yaml"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.graph",
                                     description="Loopback Microsoft Graph for Rollover demos and tests.")
    parser.add_argument("--scenario", default=str(DEMO_TENANT), help="YAML/JSON tenant scenario (default: the demo's)")
    parser.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per Graph request")
    args = parser.parse_args(argv)
    graph = LocalGraph.from_scenario(args.scenario, latency=args.latency_ms / 1000).start(args.port, quiet=False)
    print(f"Local Graph for tenant {graph.tenant_id} at {graph.base_url} (Ctrl+C to stop)")
    print(f"export ROLLOVER_GRAPH_BASE_URL={graph.base_url}")
    print(f"export ROLLOVER_FEDERATION_METADATA_BASE={graph.root_url}")
    print(f"export AZURE_TENANT_ID={graph.tenant_id}")
    for sp in graph.service_principals.values():
        print(f"  {sp['displayName']}: appId {sp['appId']}  metadata {graph.metadata_url(sp['appId'])}", flush=True)
    try:
        signal.pause()      # Ctrl+C; Event().wait() can die on 'release unlocked lock'
    except KeyboardInterrupt:
        print("stopping")
    finally:
        graph.stop()


if __name__ == "__main__":
    main()
