"""Helpers for tests that run the bot as real processes (`bot.py worker`, `bot.py serve`)."""

import os
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
