"""``python bot.py explain [--json] [--now ISO] [--entra-app FILE]... FILE_OR_URL...``

The bot's diagnosis (the same code as `explain` in chat) for admins who cannot (yet) grant the bot Graph
rights: Webex/Entra metadata or certificate files (or URLs), plus the Webex enterprise app as Graph
returns it (``az ad app show`` and/or ``az ad sp show``). Text mode prints the summary first; ``--json``
prints one object: answer, upload_to, activate_in, summary, findings.

Exit codes are ``check``'s: 0 ok, 1 warning, 2 critical / expired, 3 an input could not be read, an
``--entra-app`` file is not an app, or a document holds no certificate (3 wins over everything).
Otherwise the worst of each document's ``check`` code and the findings (critical/expired 2, warning 1).
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from typing import TextIO

from rollover.certificates.check_cli import (
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_WARNING,
    Parser,
    SourceResult,
    UsageError,
    add_threshold_options,
    parse_now,
    read_input,
)
from rollover.certificates.diagnosis import SEVERITY_ORDER, Diagnosis, Finding, TrustFacts, diagnose
from rollover.certificates.health import assess_document
from rollover.certificates.parsing import DEFAULT_MAX_BYTES, Document, parse_document
from rollover.errors import UserError
from rollover.integrations.entra_files import AppFile, facts_of, read_app_file

FINDING_EXIT = {"expired": EXIT_CRITICAL, "critical": EXIT_CRITICAL, "warning": EXIT_WARNING}


def run_explain(argv: list[str], stdout: TextIO, stderr: TextIO, *, warning_days: int = 60,
                critical_days: int = 14, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Entry point used by ``bot.py explain`` (the bot's settings as defaults); returns the exit code."""
    parser = _build_parser(stdout, stderr, warning_days, critical_days)
    try:
        args = parser.parse_args(argv)
        now = parse_now(args.now, "bot.py explain")
    except UsageError as exc:
        if exc.status == 0:  # --help was printed
            return EXIT_OK
        parser.print_usage(stderr)
        stderr.write(str(exc))
        return EXIT_UNKNOWN
    documents, results, problems = _read_documents(args.inputs, now, args, max_bytes)
    app_files, app_problems = _read_app_files(args.entra_app or [], max_bytes)
    facts = TrustFacts(webex_documents=documents, warning_days=args.warning_days, critical_days=args.critical_days)
    try:
        facts.entra_apps = [facts_of(app_files)] if app_files else []
    except UserError as error:
        app_problems.append(("the --entra-app files", str(error)))
    diagnosis = _with_problems(diagnose(facts, now), problems + app_problems)
    if args.json:
        json.dump(diagnosis.to_json(), stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_text(diagnosis))
    if problems or app_problems or any(r.exit_code == EXIT_UNKNOWN for r in results):
        return EXIT_UNKNOWN
    return max([r.exit_code for r in results] + [FINDING_EXIT.get(f.severity, EXIT_OK) for f in diagnosis.findings],
               default=EXIT_OK)


def _build_parser(stdout: TextIO, stderr: TextIO, warning_days: int, critical_days: int) -> Parser:
    parser = Parser(stdout, stderr, prog="bot.py explain",
                    description="The upload-or-activate answer and the chain of trust for Webex and Entra SSO, "
                                "from metadata/certificate files or URLs and the Webex app's JSON.")
    parser.add_argument("--json", action="store_true", help="print one JSON object (answer, upload_to, "
                                                            "activate_in, summary, findings)")
    parser.add_argument("--now", metavar="ISO-8601", help="pretend it is this moment (UTC if no offset)")
    parser.add_argument("--entra-app", action="append", metavar="FILE",
                        help="the Webex enterprise app as Graph returns it: `az ad app show --id <appId>` and/or "
                             "`az ad sp show --id <appId>` saved to a file (repeat for both, any order)")
    add_threshold_options(parser, warning_days, critical_days)
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_URL",
                        help="Webex SP metadata, Entra federation metadata or certificate files, or their URLs")
    return parser


def _read_documents(inputs: list[str], now: datetime, args, max_bytes: int):
    documents: list[Document] = []
    results: list[SourceResult] = []
    problems: list[tuple[str, str]] = []
    for source in inputs:
        try:
            document = parse_document(read_input(source, max_bytes), source=source, max_bytes=max_bytes)
        except UserError as error:
            problems.append((source, str(error)))
            continue
        documents.append(document)
        reports = assess_document(document, now, warning_days=args.warning_days, critical_days=args.critical_days)
        results.append(SourceResult(source, certificates=reports))
        if not reports:
            problems.append((source, f"{source} holds no certificate, so there is nothing to check in it."))
    return documents, results, problems


def _read_app_files(paths: list[str], max_bytes: int) -> tuple[list[AppFile], list[tuple[str, str]]]:
    files, problems = [], []
    for path in paths:
        try:
            files.append(read_app_file(read_input(path, max_bytes), path, max_bytes))
        except UserError as error:
            problems.append((path, str(error)))
    return files, problems


def _with_problems(diagnosis: Diagnosis, problems: list[tuple[str, str]]) -> Diagnosis:
    """Inputs that could not be used are findings too, so the JSON and the text say why the exit code is 3."""
    extra = [Finding("warning", f"Could not read {source}", text) for source, text in problems]
    diagnosis.findings = sorted(diagnosis.findings + extra, key=lambda f: -SEVERITY_ORDER.index(f.severity))
    return diagnosis


def render_text(diagnosis: Diagnosis) -> str:
    """The summary first, then the answer in the JSON's words, then every finding, worst first."""
    upload = ", ".join(diagnosis.upload_to) or "nothing"
    lines = [*_wrapped(diagnosis.summary, ""), "",
             f"Answer: {diagnosis.upload_verdict} (upload to: {upload}; activate in: {diagnosis.activate_in or '-'})",
             "", "Findings, worst first:"]
    for finding in diagnosis.findings:
        inferred = " (inferred)" if finding.inferred else ""
        lines.append(f"  {finding.severity.upper():8} {finding.title}{inferred}")
        lines += _wrapped(finding.text, " " * 11)
    return "\n".join(lines) + "\n"


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=110, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]
