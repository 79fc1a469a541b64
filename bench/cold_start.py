"""Benchmark: cold start of the command line and memory of the web worker, each against its floor.

- ``bot.py check FILE`` and ``bot.py --help``: wall time and peak RSS of a fresh process, against the floor
  ``python -c "import cryptography.x509, defusedxml.ElementTree"`` (what reading a certificate needs at
  least); the three alternate run by run, so a busy neighbour hits all alike; medians are reported.
- RSS of a gunicorn web worker of ``bot:create_app()`` after answering signed webhooks, against the same
  gunicorn serving the bare HMAC-checking Flask app (``bench/floor_app.py``), and of ``bot.py worker``.
The last line is the summary; it ends with the worst of the check and --help ratios as ``ratio N``.

    python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook_ack import GUNICORN_ARGS, SECRET, bodies, measure  # noqa: E402
from tests.support.processes import start_gunicorn  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "metadata" / "adfs_v2_metadata_signed_wsfed_roledescriptors.xml"
FLOOR = [sys.executable, "-c", "import cryptography.x509, defusedxml.ElementTree"]


# As installed: byte-code cached (the warm-up run writes it), like the floor's packages that pip compiled.
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def cold_starts(runs: int, document: Path) -> dict[str, list[tuple[float, float]]]:
    commands = {"floor": FLOOR, "check": [sys.executable, "bot.py", "check", str(document)],
                "help": [sys.executable, "bot.py", "--help"]}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for command in commands.values():
        timed(command)                                   # warm the file cache for every one of them
    for _ in range(runs):
        for name, command in commands.items():
            results[name].append(timed(command))
    return results


def worker_rss(gunicorn: subprocess.Popen) -> float:
    """RSS (MB) of the gunicorn master's first worker."""
    children = Path(f"/proc/{gunicorn.pid}/task/{gunicorn.pid}/children").read_text().split()
    return rss_mb(int(children[0]))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def web_memory(folder: str) -> dict[str, float]:
    """RSS of a web worker of the bot and of the floor app after 200 signed webhooks, and of bot.py worker."""
    database = f"{folder}/bench.sqlite3"
    servers = {"web": start_gunicorn("bot:create_app()", {"ROLLOVER_WEBHOOK_SECRET": SECRET,
                                                          "ROLLOVER_DATABASE": database}, GUNICORN_ARGS),
               "floor": start_gunicorn("bench.floor_app:create_floor_app()", {"FLOOR_SECRET": SECRET}, GUNICORN_ARGS)}
    worker = subprocess.Popen([sys.executable, "bot.py", "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, **worker_env(database)})
    try:
        for name, (_, port) in servers.items():
            measure(port, bodies(200, f"rss-{name}"), 200.0)
        time.sleep(2)                                    # the worker has started and handled its first sweep
        return {"web": worker_rss(servers["web"][0]), "floor": worker_rss(servers["floor"][0]),
                "worker": rss_mb(worker.pid)}
    finally:
        for process in [worker, *(p for p, _ in servers.values())]:
            process.terminate()
            process.wait(15)


def worker_env(database: str) -> dict[str, str]:
    """A worker that starts without reaching any Webex: its token check fails fast against a closed port."""
    return {"ROLLOVER_DATABASE": database, "WEBEX_ACCESS_TOKEN": "bench", "WEBEX_BASE_URL": "http://127.0.0.1:9/v1/",
            "ROLLOVER_ALLOWED_DOMAINS": "example.com", "ROLLOVER_LOG_LEVEL": "ERROR"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="alternating runs of each command")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    starts = cold_starts(args.runs, FIXTURE)
    with tempfile.TemporaryDirectory() as folder:
        memory = web_memory(folder)
    seconds = {name: statistics.median(t for t, _ in runs) * 1000 for name, runs in starts.items()}
    peak = {name: statistics.median(m for _, m in runs) for name, runs in starts.items()}
    ratio = {name: seconds[name] / seconds["floor"] for name in ("check", "help")}
    print(f"cold_start: medians of {args.runs} alternating runs | check {seconds['check']:.0f} ms "
          f"{peak['check']:.0f} MB, --help {seconds['help']:.0f} ms {peak['help']:.0f} MB | floor (import "
          f"cryptography.x509, defusedxml.ElementTree) {seconds['floor']:.0f} ms {peak['floor']:.0f} MB | "
          "RSS after 200 webhooks: "
          f"web worker {memory['web']:.0f} MB vs bare HMAC Flask {memory['floor']:.0f} MB "
          f"({memory['web'] / memory['floor']:.2f}x), bot.py worker {memory['worker']:.0f} MB | check "
          f"{ratio['check']:.1f}x, --help {ratio['help']:.1f}x the floor: ratio {max(ratio.values()):.1f}")


if __name__ == "__main__":
    main()
