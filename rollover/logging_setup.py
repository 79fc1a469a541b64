"""Logging set-up: one format, and a filter that keeps secrets out of every line.

Code never logs secrets on purpose; the filter is the safety net for what a
library or an exception message might echo (a bearer token in a URL, a
configured secret in an error text).
"""

from __future__ import annotations

import logging
import os
import re

from rollover.settings import SETTINGS, Config, url_password

_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_EXTRA_SECRET_VARIABLES = ("AZURE_CLIENT_SECRET",)
_MIN_SECRET_LENGTH = 6          # shorter values would redact ordinary words


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = _BEARER.sub(r"\1***", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(message), None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secret_values(config: Config | None) -> list[str]:
    values = [os.environ.get(name, "") for name in _EXTRA_SECRET_VARIABLES]
    values += [url_password(os.environ.get(name, "")) for name in ("DATABASE_URL", "ROLLOVER_DATABASE")]
    if config is not None:
        values += [str(config.values.get(s.key) or "") for s in SETTINGS if s.secret]
        values.append(url_password(str(config.values.get("database_path") or "")))
    return values


def configure_logging(config: Config | None, level: str | None = None) -> None:
    level = level or (config.log_level if config is not None else "INFO")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secret_values(config)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("werkzeug", "urllib3", "httpx", "azure", "webexpythonsdk", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
