"""Plain words for tracked certificates, shared by the status command, reminders and the digest."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

_MARKDOWN = re.compile(r"[\\`*_\[\]<>]")
_ESCAPED = re.compile(r"\\([\\`*_\[\]<>@])")
_THUMBPRINT = re.compile(r"\b[0-9A-Fa-f]{40}\b")
_IRREGULAR = {"person": "people", "entry": "entries", "is": "are", "was": "were", "has": "have"}


def plain(text: Any) -> str:
    """Text from people, files, certificates or Graph, shown literally in Webex Markdown (messages and card
    TextBlocks): each Markdown character backslash-escaped, so no link, emphasis, code or <@…> mention."""
    escaped = _MARKDOWN.sub(lambda match: "\\" + match.group(0), str(text))
    return escaped.replace("\\<@", "\\<\\@")   # Webex finds mentions by "<@" before rendering Markdown


def unescape(text: str) -> str:
    """What a reader sees of ``plain`` text: the Markdown escapes removed."""
    return _ESCAPED.sub(r"\1", text)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """'1 certificate', '2 certificates', '0 people': never 'certificate(s)' or '1 people'."""
    word = singular if count == 1 else many or _IRREGULAR.get(singular) or f"{singular}s"
    return f"{count} {word}"


def short_thumbprint(thumbprint: str) -> str:
    """A SHA-1 thumbprint as people compare it by eye: its first 8 and last 4 hex digits (010A52D9…E357)."""
    value = thumbprint.replace(":", "").upper()
    return f"{value[:8]}…{value[-4:]}" if len(value) > 12 else value


def shorten_thumbprints(text: str) -> str:
    """Every 40-hex-digit thumbprint in ``text`` shortened; the full values live in details and files."""
    return _THUMBPRINT.sub(lambda match: short_thumbprint(match.group(0)), text)


STATUS_WORDS = {"expired": "expired", "critical": "expires very soon", "warning": "expires soon",
                "not-yet-valid": "not valid yet", "ok": "valid"}


def day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def when(days_left: int) -> str:
    if days_left == 0:
        return "today"
    days = abs(days_left)
    count = f"{days} day{'s' if days != 1 else ''}"
    return f"{count} ago" if days_left < 0 else f"in {count}"


def status_row(view, source_numbers: dict[int, int]) -> dict:
    cert = view.certificate
    not_after = datetime.fromtimestamp(cert.not_after, timezone.utc)
    what = _what(cert)
    return {
        "status": view.status,
        "title": f"{cert.source_label}: {what}",
        "detail": (f"{STATUS_WORDS[view.status]}: not after {day(not_after)} ({when(view.days_left)}) · "
                   f"SHA-1 {cert.sha1} · source #{source_numbers.get(cert.source_id, '?')}"),
    }


def _what(cert) -> str:
    if cert.source_kind == "entra-app":
        state = "active" if cert.active else "inactive"
        return f"{state} token-signing certificate"
    role = {"idp": "IdP", "sp": "SP"}.get(cert.role, "")   # the source label says whether the SP is Webex
    use = f" {cert.use or 'signing+encryption'}" if cert.role else ""
    subject = cert.subject.split(",")[0]
    return f"{role}{use} certificate {subject}".strip()
