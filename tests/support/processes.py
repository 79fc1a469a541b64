"""Helpers for tests (and benchmarks) that run the bot as real processes (`bot.py worker`, `bot.py serve`, gunicorn)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def worker_environment(chat, lease_seconds: float) -> dict[str, str]:
    config = chat.config
    return {**os.environ,
            "WEBEX_ACCESS_TOKEN": config.webex_access_token,
            "WEBEX_BASE_URL": config.webex_base_url,
            "ROLLOVER_WEBHOOK_SECRET": config.webhook_secret,
            "ROLLOVER_DATABASE": config.database_path,
            "ROLLOVER_ALLOWED_DOMAINS": ",".join(config.allowed_domains),
            "ROLLOVER_WORKER_LEASE_SECONDS": str(lease_seconds),
            "ROLLOVER_WORKER_POLL_SECONDS": "0.05",
            "ROLLOVER_LOG_LEVEL": "WARNING"}


def start_worker(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "bot.py", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL)   # stderr: inherited, so pytest shows it on failure


def wait_until(condition, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(app_spec: str, env: dict[str, str], gunicorn_args: list[str],
                   cwd: Path = ROOT) -> tuple[subprocess.Popen, int]:
    """gunicorn serving ``app_spec`` on a free loopback port (``env`` added to this process's), once it accepts
    connections; the process and its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *gunicorn_args, "--bind", f"127.0.0.1:{port}", app_spec],
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env})

    def accepting() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    if not wait_until(accepting, timeout=30):
        process.kill()
        raise RuntimeError(f"gunicorn did not start for {app_spec}")
    return process, port
