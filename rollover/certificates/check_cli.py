"""``python bot.py check [--json] [--now ISO] [--warning-days N] [--critical-days N] FILE_OR_URL...``

Reads certificate files or SAML metadata (local paths or http/https URLs) and prints their health.
Exit code, monitoring-plugin style: 0 ok, 1 warning (also a metadata validUntil that has passed),
2 critical / expired / not yet valid, 3 an input could not be read or holds no certificate, so
there is nothing to check (3 wins over everything). Every input is reported, whatever happened
to the others: an unreadable one gets its reason, and even a bug is reported as that input's
error (with an incident id; the traceback goes to the log on stderr) rather than ending the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, TextIO

from rollover.certificates.health import FINDINGS, CertificateReport, assess_document, iso_utc, worst
from rollover.certificates.parsing import DEFAULT_MAX_BYTES, parse_document
from rollover.errors import UserError

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_BY_STATUS = {"ok": EXIT_OK, "warning": EXIT_WARNING, "not-yet-valid": EXIT_CRITICAL,
                  "critical": EXIT_CRITICAL, "expired": EXIT_CRITICAL}
TABLE_COLUMNS = ("STATUS", "DAYS", "NOT AFTER", "ROLE", "USE", "SHA1", "SUBJECT")
URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://")  # bounded: matched at the start only

log = logging.getLogger(__name__)


@dataclass
class SourceResult:
    source: str
    error: Optional[str] = None
    certificates: list[CertificateReport] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"source": self.source, "error": self.error, "certificates": [c.to_json() for c in self.certificates]}

    @property
    def exit_code(self) -> int:
        if self.error or not self.certificates:   # nothing to check: a monitoring plugin's UNKNOWN
            return EXIT_UNKNOWN
        stale = any("metadata-expired" in c.findings for c in self.certificates)
        return max(EXIT_BY_STATUS[worst(c.status for c in self.certificates)], EXIT_WARNING if stale else EXIT_OK)


class UsageError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


EXIT_CODES_HELP = """exit codes (the worst input decides, as a monitoring plugin's):
  0  OK        every certificate is valid beyond the warning threshold
  1  WARNING   a certificate expires within --warning-days, or a metadata validUntil has passed
  2  CRITICAL  a certificate expires within --critical-days, has expired or is not valid yet
  3  UNKNOWN   an input could not be read or checked (missing, malformed, no certificate in it), or bad usage"""


class Parser(argparse.ArgumentParser):
    """argparse that writes to the given streams and reports instead of calling sys.exit."""

    def __init__(self, stdout: TextIO, stderr: TextIO, **kwargs):
        super().__init__(**kwargs)
        self._out, self._err = stdout, stderr

    def print_help(self, file=None):
        super().print_help(self._out)

    def exit(self, status=0, message=None):
        raise UsageError(status, message or "")

    def error(self, message):
        raise UsageError(EXIT_UNKNOWN, f"{self.prog}: error: {message}\n")


def run_check(argv: list[str], stdout: TextIO, stderr: TextIO, *, warning_days: int = 60,
              critical_days: int = 14, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Entry point used by ``bot.py check`` (which passes the bot's settings as defaults); the exit code."""
    parser = _build_parser(stdout, stderr, warning_days, critical_days)
    try:
        args = parser.parse_args(argv)
        now = parse_now(args.now)
    except UsageError as exc:
        if exc.status == 0:  # --help was printed
            return EXIT_OK
        parser.print_usage(stderr)
        stderr.write(str(exc))
        return EXIT_UNKNOWN
    results = [_check_one(source, now, args, max_bytes) for source in args.inputs]
    if args.json:
        json.dump({"sources": [r.to_json() for r in results]}, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_table(results, now))
    return max((r.exit_code for r in results), default=EXIT_OK)


def _build_parser(stdout: TextIO, stderr: TextIO, warning_days: int, critical_days: int) -> Parser:
    parser = Parser(stdout, stderr, prog="bot.py check",
                     description="Check certificate files or SAML metadata (paths or http/https URLs).",
                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the machine-readable report")
    parser.add_argument("--now", metavar="ISO-8601", help="pretend it is this moment (UTC if no offset)")
    add_threshold_options(parser, warning_days, critical_days)
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_URL")
    return parser


def add_threshold_options(parser: argparse.ArgumentParser, warning_days: int, critical_days: int) -> None:
    """--warning-days and --critical-days, defaulting to the bot's settings (shared by check and explain)."""
    parser.add_argument("--warning-days", type=non_negative, default=warning_days, metavar="N",
                        help=f"warning when N days or fewer are left (default {warning_days}, "
                             "ROLLOVER_WARNING_DAYS)")
    parser.add_argument("--critical-days", type=non_negative, default=critical_days, metavar="N",
                        help=f"critical when N days or fewer are left (default {critical_days}, "
                             "ROLLOVER_CRITICAL_DAYS)")


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def parse_now(text: Optional[str], prog: str = "bot.py check") -> datetime:
    """--now as a UTC moment (UTC when it has no offset); now when not given."""
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(EXIT_UNKNOWN, f"{prog}: error: --now {text!r} is not an ISO 8601 date/time\n") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _check_one(source: str, now: datetime, args: argparse.Namespace, max_bytes: int) -> SourceResult:
    try:
        data = read_input(source, max_bytes)
        document = parse_document(data, source=source, max_bytes=max_bytes)
        reports = assess_document(document, now, warning_days=args.warning_days, critical_days=args.critical_days)
    except UserError as exc:
        return SourceResult(source, error=str(exc))
    except Exception:  # a bug: logged with its traceback; the other inputs are still checked
        incident = secrets.token_hex(4)
        log.exception("incident %s: check of %s failed", incident, source)
        return SourceResult(source, error=f"Cannot check {source}: an internal error occurred (incident {incident}).")
    return SourceResult(source, certificates=reports)


def read_input(source: str, max_bytes: int) -> bytes:
    if _is_url(source):
        # requests is loaded only when a URL is checked
        from rollover.certificates.sources import fetch_url
        return fetch_url(source, max_bytes=max_bytes)
    try:
        if os.path.getsize(source) > max_bytes:  # refuse before reading a huge file into memory
            raise UserError(f"Cannot read {source}: it is larger than the {max_bytes // (1024 * 1024)} MB limit.")
        with open(source, "rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"Cannot read {source}: {exc.strerror or type(exc).__name__}.") from exc


def _is_url(source: str) -> bool:
    """http(s) always; another scheme:// too (fetch_url then names it unsupported) unless such a file exists."""
    if source.lower().startswith(("http://", "https://")):
        return True
    return bool(URL_LIKE.match(source)) and not os.path.exists(source)


def render_table(results: list[SourceResult], now: datetime) -> str:
    """Readable, aligned text: one block per source."""
    lines = [f"Certificate check at {iso_utc(now)}"]
    for result in results:
        lines.append("")
        lines.append(f"{result.source}")
        if result.error:
            lines.append(f"  UNREADABLE: {result.error}")
            continue
        if not result.certificates:
            lines.append("  UNKNOWN: no certificate in this document, nothing to check")
            continue
        lines += _table_rows(result.certificates)
    return "\n".join(lines) + "\n"


def _table_rows(reports: list[CertificateReport]) -> list[str]:
    cells = [(r.status, str(r.days_left), iso_utc(r.not_after), r.role or "-", use_label(r), r.sha1, r.subject)
             for r in reports]
    widths = [max(len(row[i]) for row in [TABLE_COLUMNS, *cells]) for i in range(len(TABLE_COLUMNS) - 1)]
    lines = [_table_line(TABLE_COLUMNS, widths)]
    entity = None
    for report, row in zip(reports, cells, strict=False):
        if report.entity_id and report.entity_id != entity:
            entity = report.entity_id
            lines.append(f"  entity {entity}")
        lines.append(_table_line(row, widths))
        lines += [f"      ! {FINDINGS[code]}" for code in report.findings]
    return lines


def use_label(report: CertificateReport) -> str:
    """A metadata KeyDescriptor without ``use`` serves both uses; say so rather than look explicit."""
    if report.use:
        return report.use
    return "signing+encryption (no use given)" if report.role else "-"


def _table_line(row: tuple[str, ...], widths: list[int]) -> str:
    """Left-aligned columns, DAYS right-aligned; the subject (last, longest) is not padded."""
    padded = [cell.rjust(width) if column == 1 else cell.ljust(width)
              for column, (cell, width) in enumerate(zip(row, widths, strict=False))]
    return "  " + "  ".join(padded + [row[-1]])
