"""Benchmark: every scanner of untrusted text in certificates/ on a 5 MB adversarial input.

One input per scanner, each built to hit that scanner's worst case (the issue 11 inputs among
them: PEM BEGIN lines without END, unclosed ENTITY declarations). Each is timed at 5 MB against
its floor, a plain read of the same bytes (``bytes.count(b"\\n")``), and again at 1 MB: a linear
scanner takes about 5 times longer on 5 times the bytes, a quadratic one 25 times. Prints one
line per scanner, then one summary line: the worst ratio to the floor and the worst growth.

    python bench/hostile_inputs.py [--repeat 3] [--only NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollover.certificates.diagnosis import classify_webex_entity  # noqa: E402
from rollover.certificates.health import assess_document  # noqa: E402
from rollover.certificates.parsing import DocumentError, EntityInfo, parse_document  # noqa: E402
from rollover.certificates.sources import redact  # noqa: E402
from tests.support.certfactory import MD, make_cert, make_idp_metadata, pem_of, utc  # noqa: E402

MB = 1024 * 1024
SIZES = (1 * MB, 5 * MB)
ENTITY_HEAD = f'<md:EntityDescriptor xmlns:md="{MD}" entityID="https://bench"><md:SPSSODescriptor>'.encode()
ENTITY_TAIL = b"</md:SPSSODescriptor></md:EntityDescriptor>"


def fill(size: int, unit: bytes, head: bytes = b"", tail: bytes = b"") -> bytes:
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


def endpoints(size: int) -> bytes:
    unit = len(b'<md:AssertionConsumerService Location="https://sp/000000"/>')
    count = (size - len(ENTITY_HEAD) - len(ENTITY_TAIL)) // unit
    return ENTITY_HEAD + b"".join(b'<md:AssertionConsumerService Location="https://sp/%06d"/>' % i
                                  for i in range(count)) + ENTITY_TAIL


def aggregate(size: int) -> bytes:
    certificate = make_cert("bench", utc(2024, 1, 1), utc(2030, 1, 1), curve="secp256r1")[0]
    entity = make_idp_metadata("https://idp/0", [certificate]).split(b"?>", 1)[1].replace(
        f' xmlns:md="{MD}"'.encode(), b"")
    count = (size - 200) // (len(entity) + 8)
    body = b"".join(entity.replace(b"https://idp/0", b"https://idp/%d" % i) for i in range(count))
    return f'<md:EntitiesDescriptor xmlns:md="{MD}">'.encode() + body + b"</md:EntitiesDescriptor>"


def noisy_pem(size: int) -> bytes:
    good = pem_of(make_cert("inside", utc(2024, 1, 1), utc(2030, 1, 1))[0])
    noise = b"-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE----\n-----BEGIN PRIVATE KEY-----\n"
    return fill(size, noise, tail=good)


def nested(size: int) -> bytes:
    depth = (size - len(ENTITY_HEAD) - len(ENTITY_TAIL)) // 7
    return ENTITY_HEAD + b"<a>" * depth + b"</a>" * depth + ENTITY_TAIL


def describe(result: object) -> str:
    """A short word on what the scanner concluded (a DocumentError code, counts, a value)."""
    if hasattr(result, "entities"):
        urls = sum(len(e.acs_urls) + len(e.sso_urls) for e in result.entities)
        return f"{len(result.entities)} entities, {len(result.certificates)} certificates, {urls} endpoints"
    return str(result)


def parse(data: bytes) -> object:
    try:
        return parse_document(data, source="bench", max_bytes=len(data))
    except DocumentError as exc:
        return exc.code


def parse_and_assess(data: bytes) -> object:
    return len(assess_document(parse_document(data, source="bench", max_bytes=len(data)), utc(2025, 6, 1)))


def classify(data: bytes) -> object:
    trust = classify_webex_entity(EntityInfo(data.decode("ascii"), roles=["sp"]))
    return trust.kind if trust else None


def redact_text(data: bytes) -> object:
    return len(redact(data.decode("ascii")))


# name: (what it attacks, input builder, scanner)
SCANNERS: dict[str, tuple[str, Callable[[int], bytes], Callable[[bytes], object]]] = {
    "pem-begin-without-end": ("PEM markers: the issue's BEGIN lines, no END",
                              lambda n: fill(n, b"-----BEGIN CERTIFICATE-----\n"), parse),
    "pem-markers-and-near-misses": ("PEM markers: END lines and near misses around one block", noisy_pem, parse),
    "pem-begin-then-base64": ("PEM markers: one BEGIN, 5 MB of base64, no END",
                              lambda n: fill(n, b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n",
                                             head=b"-----BEGIN CERTIFICATE-----\n"), parse),
    "entity-unclosed": ("ENTITY declarations: the issue's, never closed",
                        lambda n: fill(n, b"<!ENTITY a ", head=b"<!DOCTYPE x ["), parse),
    "entity-closed-external": ("ENTITY declarations: closed, an external one last",
                               lambda n: fill(n, b'<!ENTITY a "b">', head=b"<!DOCTYPE x [",
                                              tail=b'<!ENTITY e SYSTEM "file:///etc/passwd">]><x/>'), parse),
    "endpoint-locations": ("metadata endpoints: every Location distinct", endpoints, parse),
    "entities-assessed": ("metadata entities: parsed, then assessed", aggregate, parse_and_assess),
    "xml-long-comment": ("expat: one comment as long as the input",
                         lambda n: fill(n, b"a", head=ENTITY_HEAD + b"<!--", tail=b"-->" + ENTITY_TAIL), parse),
    "xml-long-attribute": ("expat: one attribute as long as the input",
                           lambda n: fill(n, b"a", head=ENTITY_HEAD + b"<x a='", tail=b"'/>" + ENTITY_TAIL), parse),
    "xml-deep-nesting": ("metadata reader: elements nested to the bottom", nested, parse),
    "xml-many-elements": ("expat and the tree builder: empty elements, as many as fit",
                          lambda n: fill(n, b"<a/>", head=ENTITY_HEAD, tail=ENTITY_TAIL), parse),
    "valid-until": ("validUntil: one attribute as long as the input",
                    lambda n: fill(n, b"9", head=f'<md:EntityDescriptor xmlns:md="{MD}" entityID="e" validUntil="'
                                   .encode(), tail=b'"/>'), parse),
    "binary": ("printable-text check: binary that is not DER", lambda n: fill(n, bytes(range(256))), parse),
    "base64-text": ("strict base64: text that decodes to neither PEM nor DER", lambda n: fill(n, b"QUJD" * 16 + b"\n"),
                    parse),
    "utf16-text": ("UTF-16 text: BEGIN lines",
                   lambda n: "\ufeff".encode("utf-16-le") + fill(n - 2, "-----BEGIN CERTIFICATE-----\n".encode(
                       "utf-16-le")), parse),
    "entity-id-host": ("diagnosis: Webex host patterns on a huge entityID",
                       lambda n: b"https://idbroker" + fill(n - 40, b"a.") + b"webex.co/org", classify),
    "url-redact": ("URL shown in messages: a 5 MB URL", lambda n: b"https://h/" + fill(n - 20, b"a/") + b"?sig=x",
                   redact_text),
}


def best_seconds(action: Callable[[], object], repeat: int, at_least: float = 0.3) -> float:
    """Best of ``repeat`` runs, and of more while they add up to less than ``at_least`` seconds (short
    scans are noisy on a shared machine)."""
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeat or (spent < at_least and runs < 200):
        started = time.process_time()  # CPU time: the machine is shared, wall time counts the others' work
        action()
        took = time.process_time() - started
        best, spent, runs = min(best, took), spent + took, runs + 1
    return best


def measure(name: str, repeat: int) -> tuple[float, float, float, object]:
    """(seconds at 5 MB, floor at 5 MB, growth 1 -> 5 MB, result at 5 MB)."""
    _, build, scan = SCANNERS[name]
    small, large = (build(size) for size in SIZES)
    result = scan(large)
    seconds = {len(small): best_seconds(lambda: scan(small), repeat),
               len(large): best_seconds(lambda: scan(large), repeat)}
    floor = best_seconds(lambda: large.count(b"\n"), repeat)
    growth = (seconds[len(large)] / seconds[len(small)]) / (len(large) / len(small)) * 5
    return seconds[len(large)], floor, growth, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=sorted(SCANNERS), action="append")
    args = parser.parse_args(argv)

    rows = []
    for name in args.only or SCANNERS:
        seconds, floor, growth, result = measure(name, args.repeat)
        rows.append((name, seconds, floor, growth))
        print(f"  {name:28} {seconds:8.3f} s  floor {floor * 1000:6.2f} ms  {seconds / floor:8.0f}x  "
              f"1->5 MB x{growth:4.1f}  [{describe(result)}]  {SCANNERS[name][0]}", flush=True)
    worst = max(rows, key=lambda row: row[1] / row[2])
    steepest = max(rows, key=lambda row: row[3])
    print(f"hostile_inputs: {len(rows)} scanners on 5 MB adversarial inputs; worst {worst[0]} {worst[1]:.2f} s = "
          f"{worst[1] / worst[2]:.0f}x its floor (a plain read of the bytes, {worst[2] * 1000:.1f} ms); "
          f"steepest growth 1->5 MB x{steepest[3]:.1f} ({steepest[0]}; linear x5, quadratic x25)")


if __name__ == "__main__":
    main()
