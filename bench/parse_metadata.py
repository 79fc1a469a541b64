"""Benchmark: SAML metadata parsing throughput and peak memory, against a floor.

Builds an EntitiesDescriptor aggregate of N entities (default 5,000, about 20 MB; each with three
KeyDescriptors drawn from a few certificates generated once), then measures
  1. ``certificates.parsing.parse_document`` (hardened iterparse, strict base64, certificate
     loading and de-duplication), and
  2. the floor: ``defusedxml.ElementTree.fromstring`` + a walk over every element, which is the
     least any safe parser must do.
Time is the best of ``--repeat`` runs without tracing; peak memory is a separate tracemalloc run.
Prints one line.

    python bench/parse_metadata.py [--entities 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import defusedxml.ElementTree as SafeET  # noqa: E402

from rollover.certificates.parsing import parse_document  # noqa: E402
from tests.support.certfactory import idp_entity, make_aggregate, make_cert, sp_entity, utc  # noqa: E402

DISTINCT_CERTIFICATES = 6
ORGANIZATION = (
    '<md:Organization><md:OrganizationName xml:lang="en">Bench Org {n}</md:OrganizationName>'
    '<md:OrganizationDisplayName xml:lang="en">Bench Organisation number {n}</md:OrganizationDisplayName>'
    '<md:OrganizationURL xml:lang="en">https://org{n}.example.com/</md:OrganizationURL></md:Organization>'
    '<md:ContactPerson contactType="technical"><md:GivenName>Admin</md:GivenName>'
    "<md:EmailAddress>mailto:admin@org{n}.example.com</md:EmailAddress></md:ContactPerson>"
)


def build_aggregate(entities: int) -> bytes:
    """An aggregate alternating Webex-like SP entities and Entra-like IdP entities."""
    certs = [make_cert(f"bench-{i}", utc(2024, 1, 1), utc(2027 + i, 1, 1), key_index=i)[0]
             for i in range(DISTINCT_CERTIFICATES)]
    parts = []
    for n in range(entities):
        a, b, c = (certs[(n + k) % DISTINCT_CERTIFICATES] for k in range(3))
        if n % 2:
            entity = idp_entity(f"https://sts.windows.net/tenant-{n}/", [a, b], f"https://login.example.com/{n}/saml2",
                                encryption_certs=[c])
        else:
            entity = sp_entity(f"https://idbroker.webex.com/org-{n}", [a], [b], [f"https://idbroker.webex.com/{n}/sp"],
                               both_use_certs=[c])
        parts.append(entity.replace("</md:EntityDescriptor>", ORGANIZATION.format(n=n) + "</md:EntityDescriptor>"))
    return make_aggregate(parts, valid_until=utc(2030, 1, 1))


def floor_walk(data: bytes) -> int:
    root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    return sum(1 for _ in root.iter())


def best_seconds(action: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def peak_mb(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    data = build_aggregate(args.entities)
    size_mb = len(data) / 1e6
    parse = lambda: parse_document(data, source="bench", max_bytes=len(data))  # noqa: E731
    walk = lambda: floor_walk(data)  # noqa: E731

    document = parse()
    assert len(document.entities) == args.entities, "parser lost entities"
    parse_s, walk_s = best_seconds(parse, args.repeat), best_seconds(walk, args.repeat)
    parse_peak, walk_peak = peak_mb(parse), peak_mb(walk)
    print(f"parse_metadata: {size_mb:.1f} MB, {args.entities} entities, {len(document.certificates)} certificate "
          f"entries: {size_mb / parse_s:.1f} MB/s, peak {parse_peak:.0f} MB | floor (defusedxml walk): "
          f"{size_mb / walk_s:.1f} MB/s, peak {walk_peak:.0f} MB | ratio {parse_s / walk_s:.1f}x")


if __name__ == "__main__":
    main()
