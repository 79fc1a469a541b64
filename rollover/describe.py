"""Plain words for tracked certificates, shared by the status command, reminders and the digest."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

_MARKDOWN = re.compile(r"[\\`*_\[\]<>]")
_ESCAPED = re.compile(r"\\([\\`*_\[\]<>@])")
_THUMBPRINT = re.compile(r"\b[0-9A-Fa-f]{40}\b")
_GUID = re.compile(r"\b([0-9A-Fa-f]{8})-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b")
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


def short_ids(text: str) -> str:
    """GUIDs (organisation ids in source names) cut to their first 8 digits: 7f9e2c4a…"""
    return _GUID.sub(lambda match: match.group(1) + "…", text)


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


def certificate_rows(views: list, source_numbers: dict[int, int]) -> list[dict]:
    """One row per distinct certificate (by SHA-1), in the order of ``views`` (worst first): what it is, how
    long it has left and where the space sees it (sources by the number `forget` takes, and their uses).

    A row: status, days_left, sha1, subject, not_before, not_after (days), kind (entra, webex, sp, idp, file),
    title, state ("expires in 19 days (2026-12-22)"), where, and ``detail`` = "<state>: <where>" (the state
    part is what a card colours)."""
    groups: dict[str, list] = {}
    for view in views:
        groups.setdefault(view.certificate.sha1.upper(), []).append(view)
    return [_row(group, source_numbers) for group in groups.values()]


def _row(views: list, source_numbers: dict[int, int]) -> dict:
    first = views[0]
    cert = first.certificate
    state = lifetime(first.status, first.days_left, datetime.fromtimestamp(cert.not_before, timezone.utc),
                     datetime.fromtimestamp(cert.not_after, timezone.utc))
    where = _seen_in([view.certificate for view in views], source_numbers)
    kind, title = _kind_and_title([view.certificate for view in views])
    return {"status": first.status, "days_left": first.days_left, "sha1": cert.sha1,
            "subject": cert.subject, "kind": kind, "title": title,
            "state": state, "where": where, "detail": f"{state}: {where}",
            "not_before": day(datetime.fromtimestamp(cert.not_before, timezone.utc)),
            "not_after": day(datetime.fromtimestamp(cert.not_after, timezone.utc))}


def lifetime(status: str, days_left: int, not_before: datetime, not_after: datetime) -> str:
    """How long a certificate has left, in words: 'expires in 19 days (2026-12-22)'."""
    if status == "expired":
        return f"expired {plural(-days_left, 'day')} ago ({day(not_after)})" if days_left < 0 \
            else f"expired today ({day(not_after)})"
    if status == "not-yet-valid":
        return f"not valid before {day(not_before)}"
    if status == "ok":
        return f"valid until {day(not_after)} ({when(days_left)})"
    return f"expires {when(days_left)} ({day(not_after)})"


def certificate_title(certificates: list) -> str:
    """What a certificate is, whichever sources list it: Entra's signing certificate of an app, Webex's SP
    certificate, another IdP's, or a certificate file's."""
    return _kind_and_title(certificates)[1]


def _kind_and_title(certificates: list) -> tuple[str, str]:
    apps = [c.source_label.removeprefix("Entra app ") for c in certificates if c.source_kind == "entra-app"]
    if apps:
        return "entra", f"Entra signing certificate of {', '.join(dict.fromkeys(apps))}"
    roles = {c.role for c in certificates}
    name = _common_name(certificates[0].subject)
    if "sp" in roles:
        if any("Webex" in c.source_label for c in certificates):
            return "webex", f"Webex SP certificate {name}"
        return "sp", f"SP certificate {name}"
    if "idp" in roles:
        if any(c.source_label.startswith("Entra") for c in certificates):
            return "entra", "Entra signing certificate"
        return "idp", f"IdP signing certificate {name}"
    return "file", f"Certificate {name}"


def _seen_in(certificates: list, source_numbers: dict[int, int]) -> str:
    """'#1 Webex SP metadata (Control Hub) (signing, encryption) · #3 Entra app Cisco Webex (active)'."""
    uses: dict[int, list[str]] = {}
    labels = {}
    for cert in certificates:
        labels[cert.source_id] = cert.source_label
        if cert.source_kind == "entra-app":
            use = "active" if cert.active else "inactive"
        else:
            use = cert.use or ("signing+encryption" if cert.role else "")
        uses.setdefault(cert.source_id, [])
        if use and use not in uses[cert.source_id]:
            uses[cert.source_id].append(use)
    return " · ".join(f"#{source_numbers.get(source, '?')} {short_ids(labels[source])}"
                      + (f" ({', '.join(used)})" if used else "")
                      for source, used in sorted(uses.items(), key=lambda item: source_numbers.get(item[0], 0)))


def _common_name(subject: str) -> str:
    first = subject.split(",")[0].strip()
    return first.removeprefix("CN=") or subject
