"""The command line: argparse and the sub-commands (``python bot.py --help``).

Each sub-command imports what it needs when it runs, so ``--help`` and ``check`` start quickly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rollover import VERSION
from rollover.errors import Retryable, UserError
from rollover.logging_setup import configure_logging
from rollover.settings import EVENT_MODES, Config, ConfigError, load_config, readme_with_settings, settings_markdown

if TYPE_CHECKING:   # the rest is imported by the sub-commands that use it: `check` and --help load none of it
    from rollover.app import ChatLayer, ChatLayerFactory
    from rollover.storage import Storage

log = logging.getLogger("rollover")


def _require_live(config: Config, *, receives_webhooks: bool) -> None:
    """What a process that talks to Webex needs; only the one that receives webhooks needs their secret."""
    required = ("webex_access_token", "webhook_secret") if receives_webhooks else ("webex_access_token",)
    problems = []
    for check in (lambda: config.require(*required), config.require_access_control):
        try:
            check()
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    _check_token(config)


def _check_token(config: Config) -> None:
    """Fail at start-up, not at the first message, when Webex refuses the token."""
    from rollover.integrations.webex_client import WebexClient, WebexUnavailable
    try:
        WebexClient(config.webex_access_token, config.webex_base_url).me()
    except WebexUnavailable as error:
        if error.status_code == 401:
            raise ConfigError(["WEBEX_ACCESS_TOKEN was refused by Webex (401): copy the bot's current token "
                               "from https://developer.webex.com/my-apps (regenerating it revokes the old one)."]) \
                from None
        log.warning("could not reach Webex to check the token (%s); starting anyway", error)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    """One-process install: the webhook service with a worker thread beside it."""
    from rollover import metrics
    from rollover.app import build_services, build_worker, run_worker_until, start_background_jobs, start_socket_events
    from rollover.serving import PooledWSGIServer
    from rollover.web import create_app, on_recorded
    # Websocket mode receives events over an outbound connection: no webhook secret, no public URL.
    _require_live(config, receives_webhooks=not config.websocket_events)
    app = create_app(config)
    chat = args.chat()
    worker = build_worker(build_services(config, chat))
    on_recorded(app, worker.wake.set)
    stop = threading.Event()
    thread = run_worker_until(worker, stop)
    socket_events = start_socket_events(config, worker.storage, worker.wake.set)
    app.extensions["rollover"]["socket_events"] = socket_events
    stop_background_jobs = start_background_jobs(config, chat)
    stop_metrics = metrics.serve_port(config, worker.storage)
    server = PooledWSGIServer(args.host, args.port, app)   # acknowledges on a pool: threads and connections reused
    if socket_events is not None:
        log.info("Rollover %s receiving Webex events over the websocket; /healthz on http://%s:%d",
                 VERSION, args.host, args.port)
    else:
        log.info("Rollover %s listening on http://%s:%d/webhooks/webex", VERSION, args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if socket_events is not None:
            socket_events.stop()
        stop.set()
        stop_metrics()
        stop_background_jobs()
        thread.join(timeout=10)
    return 0


def cmd_worker(args: argparse.Namespace, config: Config) -> int:
    """The Procfile's worker process: runs recorded events and the scheduler (rotation and reminder sweeps)."""
    from rollover import metrics
    from rollover.app import build_services, build_worker, start_background_jobs, start_socket_events
    from rollover.pipeline.wakeup import wake_channel_for
    _require_live(config, receives_webhooks=False)
    chat = args.chat()
    worker = build_worker(build_services(config, chat))
    stop = threading.Event()
    socket_events = start_socket_events(config, worker.storage, worker.wake.set)
    stop_listening = wake_channel_for(config.database_path).listen(worker.wake.set)   # the web process pokes it
    metrics.enable(config)
    stop_metrics = metrics.serve_port(config, worker.storage)
    stop_background_jobs = start_background_jobs(config, chat)
    # SIGTERM (a process manager stopping it): claim nothing more, finish the events running, clean up.
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), worker.wake.set()))
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if socket_events is not None:
            socket_events.stop()
        stop_listening()
        stop_metrics()
        stop_background_jobs()
    return 0


def cmd_remind(args: argparse.Namespace, config: Config) -> int:
    """One reminder sweep now (or as of --now); --dry-run prints what would be sent and records nothing."""
    from rollover.app import build_services
    from rollover.reminders.sweep import run_sweep
    from rollover.services import Services
    if args.dry_run:
        # Reads only: no Webex or Graph client is needed, so no token either.
        storage = existing_storage(config)
        chat = args.chat()
        services = Services(config=config, storage=storage, webex=None, registry=chat.registry, cards=chat.cards)
    else:
        from rollover import metrics
        config.require("webex_access_token")
        metrics.enable(config)     # its posts count in the reminders' totals
        services = build_services(config, args.chat())
    try:
        report = run_sweep(services, args.now, dry_run=args.dry_run)
    finally:
        if services.entra is not None:
            services.entra.close()
    print("\n".join(report.lines()))
    return 1 if report.failed else 0


def iso_moment(text: str) -> datetime:
    """An ISO 8601 moment for --now (UTC when it has no offset)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date/time, e.g. 2026-03-30T09:05+02:00") \
            from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def cmd_webhooks(args: argparse.Namespace, config: Config) -> int:
    from rollover.integrations.webex_client import WebexClient
    from rollover.pipeline.webhooks import sync_webhooks, webhook_target
    config.require("webex_access_token")
    webex = WebexClient(config.webex_access_token, config.webex_base_url)
    if args.webhooks_command == "list":
        for w in webex.list_webhooks():
            print(f"{w.id}  {w.name:<16} {w.resource}/{w.event:<8} {w.status:<8} {w.target_url}")
        return 0
    config.require("webhook_secret")
    url = args.url or config.public_url
    if not url:
        raise ConfigError(["No public URL: pass --url https://YOUR-HOST or set ROLLOVER_PUBLIC_URL."])
    if not url.startswith("https://") and not args.allow_http:
        raise ConfigError([f"Webex delivers webhooks over https only; {url!r} is not https "
                           "(use --allow-http only for a local Webex API)."])
    report = sync_webhooks(webex, name=config.webhook_name, public_url=url, secret=config.webhook_secret)
    print(f"Webhooks named {config.webhook_name!r} now deliver to {webhook_target(url)}:")
    for line in report.lines():
        print("  " + line)
    return 0


def cmd_audit(args: argparse.Namespace, config: Config) -> int:
    """The rotation audit log: readable lines, or a JSON array with --json (oldest first)."""
    from rollover.rotation import audit
    storage = existing_storage(config)
    entries = storage.audit.entries(room_id=args.room, rotation_id=args.rotation, limit=args.limit)
    if args.json:
        print(audit.export_json(entries))
    elif not entries:
        print(f"No audit entries in {storage.describe()} for this selection.", file=sys.stderr)
    else:
        for entry in entries:
            print(audit.entry_line(entry, markdown=False))
    return 0


def cmd_rotations(args: argparse.Namespace, config: Config) -> int:
    """The open rotations of every space; --cancel ID cancels one that has not activated anything yet."""
    from rollover.rotation import engine as rotation
    if args.cancel is not None:
        return cancel_rotation(config, args.cancel, args.chat())
    records = existing_storage(config).rotations.all()
    for record in records:
        print(rotation.operator_line(record))
    if not records:
        print("No rotation is open.")
    return 0


def cancel_rotation(config: Config, rotation_id: int, chat: ChatLayer) -> int:
    """Cancel as the operator (audited so) and post the cancelled card in the rotation's space."""
    from rollover.app import build_services
    from rollover.integrations.webex_client import WebexUnavailable
    from rollover.rotation import engine as rotation
    config.require("webex_access_token")
    existing_storage(config)
    services = build_services(config, chat)
    try:
        record = rotation.cancel_by_operator(services, rotation_id)
    except WebexUnavailable as error:   # raised after the cancel was committed: only the card waits
        print(f"Rotation #{rotation_id} is cancelled; Webex did not take its card now ({error}), the worker's "
              "rotation sweeper posts it.")
        return 0
    finally:
        if services.entra is not None:
            services.entra.close()
    print(f"Rotation #{record.id} of {record.app_name} is cancelled, audited as {rotation.OPERATOR_ACTOR}.")
    return 0


def existing_storage(config: Config) -> Storage:
    """The bot's database for commands that only read it: a wrong path must not look like an empty history."""
    from rollover.storage import Storage, is_database_url
    if not is_database_url(config.database_path) and not Path(config.database_path).is_file():
        raise ConfigError([f"ROLLOVER_DATABASE={config.database_path!r} does not exist "
                           f"(looked in {Path(config.database_path).resolve()}): point it at the bot's database "
                           "or run this from the bot's working directory."])
    storage = Storage(config.database_path)
    storage.migrate()
    return storage


def cmd_copy_database(args: argparse.Namespace, config: Config) -> int:
    """Copy an SQLite install's data into the configured (or --to) store, verified by counts."""
    from rollover.storage import Storage, is_database_url
    from rollover.storage.copy import copy_store
    target_location = args.to or config.database_path
    if is_database_url(args.sqlite_file) or not Path(args.sqlite_file).is_file():
        raise ConfigError([f"{args.sqlite_file!r} is not an SQLite file: give the path of the old install's "
                           "database (its ROLLOVER_DATABASE)."])
    if not is_database_url(target_location) and Path(target_location).resolve() == Path(args.sqlite_file).resolve():
        raise ConfigError(["The target is the SQLite file itself: set DATABASE_URL (or pass --to URL)."])
    source, target = Storage(args.sqlite_file), Storage(target_location)
    try:
        print(f"Copying {source.describe()} into {target.describe()} …")
        copied = copy_store(source, target, progress=lambda line: print(f"  {line}"))
    finally:
        source.dispose()
        target.dispose()
    rows = sum(table.target_rows for table in copied)
    print(f"Done: {rows} rows in {len(copied)} tables, the counts of every table match. Point the bot at "
          f"{target.describe()} and start it.")
    return 0


def cmd_settings(args: argparse.Namespace, config: Config | None) -> int:
    if args.markdown:
        sys.stdout.write(settings_markdown())
        return 0
    if args.write_docs:
        root = Path(__file__).resolve().parents[1]
        (root / "docs" / "settings.md").write_text(settings_markdown())
        readme = root / "README.md"
        readme.write_text(readme_with_settings(readme.read_text()))
        print("wrote docs/settings.md and the settings block of README.md")
        return 0
    for name, value in load_config().redacted().items():
        print(f"{name}={value}")
    return 0


def cmd_check(args: argparse.Namespace, config: Config | None) -> int:
    from rollover.certificates.check_cli import run_check
    config = load_config()   # the same thresholds and size limit as the bot's answers in chat
    return run_check(args.check_args, sys.stdout, sys.stderr, warning_days=config.warning_days,
                     critical_days=config.critical_days, max_bytes=config.max_document_bytes)


def cmd_explain(args: argparse.Namespace, config: Config | None) -> int:
    from rollover.certificates.explain_cli import run_explain
    config = load_config()   # the same thresholds and size limit as the bot's answers in chat
    return run_explain(args.check_args, sys.stdout, sys.stderr, warning_days=config.warning_days,
                       critical_days=config.critical_days, max_bytes=config.max_document_bytes)


def cmd_demo(args: argparse.Namespace, config: Config | None) -> int:
    if args.demo is None:
        raise ConfigError(["The demo is not part of this installation (it lives in the fakes/ package)."])
    configure_logging(None, level="WARNING")   # the transcript is the output; problems still show
    return args.demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot.py", description="Rollover — keeps Webex ↔ Entra ID SAML certificates from expiring unnoticed.",
        epilog="Settings come from the environment; see docs/settings.md or `bot.py settings`.")
    parser.add_argument("--version", action="version", version=f"Rollover {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhook service (or, with ROLLOVER_EVENTS=websocket, the "
                                              "Webex websocket and /healthz) with a worker thread, the reminder "
                                              "scheduler and the rotation sweeper (one-process install)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.set_defaults(run=cmd_serve, needs_config=True)

    worker = commands.add_parser("worker", help="process recorded events, send scheduled reminders and sweep "
                                                "rotations (the Procfile's worker); with ROLLOVER_EVENTS=websocket "
                                                "it also holds the Webex websocket, or stands by for it")
    worker.set_defaults(run=cmd_worker, needs_config=True)

    remind = commands.add_parser(
        "remind", help="run one reminder sweep now: for spaces whose daily time has come, refresh sources and "
                       "post the reminders and digests due; retry earlier failed posts")
    remind.add_argument("--now", metavar="ISO-8601", type=iso_moment,
                        help="sweep as of this moment (UTC if no offset); without --dry-run it records and posts "
                             "as if that moment had come")
    remind.add_argument("--dry-run", action="store_true",
                        help="print what would be sent; send nothing, record nothing, refresh nothing")
    remind.set_defaults(run=cmd_remind, needs_config=True)

    demo = commands.add_parser("demo", help="play a conversation against a local Webex API and SQLite file")
    shown = demo.add_mutually_exclusive_group()
    shown.add_argument("--interactive", action="store_true", help="type messages yourself as a space member")
    shown.add_argument("--web", action="store_true",
                       help="then serve the space as a web page on 127.0.0.1: rendered cards, any member, file drop "
                            "(needs `make browser-deps`)")
    demo.add_argument("--events", choices=EVENT_MODES, default="webhook",
                      help="how the local Webex hands events to the bot: signed webhooks (default) or frames on the "
                           "bot's websocket, as with ROLLOVER_EVENTS=websocket")
    demo.add_argument("--port", type=int, default=8000, help="port of the --web page (default 8000)")
    demo.add_argument("--database", metavar="PATH", help="keep the demo database at PATH instead of a temp file")
    demo.set_defaults(run=cmd_demo, needs_config=False)

    check = commands.add_parser(
        "check", help="check certificate files, SAML metadata files or URLs; exit code 0/1/2/3 like a "
                      "monitoring plugin",
        add_help=False)
    check.add_argument("check_args", nargs=argparse.REMAINDER,
                       help="[--json] [--now ISO-8601] [--warning-days N] [--critical-days N] FILE_OR_URL...")
    check.set_defaults(run=cmd_check, needs_config=False)
    explain = commands.add_parser(
        "explain", help="the upload-or-activate answer for Webex/Entra files or URLs (and the Webex app's JSON from "
                        "az ad app/sp show); exit code like check", add_help=False)
    explain.add_argument("check_args", nargs=argparse.REMAINDER,
                         help="[--json] [--now ISO-8601] [--entra-app FILE]... FILE_OR_URL...")
    explain.set_defaults(run=cmd_explain, needs_config=False)

    webhooks = commands.add_parser("webhooks", help="manage the bot's Webex webhooks")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    sync = webhook_commands.add_parser("sync", help="create/update the messages and attachmentActions webhooks")
    sync.add_argument("--url", help="public base URL of this bot, e.g. https://rollover.example.com")
    sync.add_argument("--allow-http", action="store_true",
                      help="accept an http:// URL: only for a bot on 127.0.0.1 with the local Webex API "
                           "(python -m fakes.webex); Webex itself delivers over https")
    webhook_commands.add_parser("list", help="list the bot's webhooks")
    webhooks.set_defaults(run=cmd_webhooks, needs_config=True)

    audit_log = commands.add_parser("audit", help="print the rotation audit log, or export it with --json")
    audit_log.add_argument("--json", action="store_true", help="a JSON array of the entries, oldest first")
    audit_log.add_argument("--room", metavar="ROOM_ID", help="only the entries of this Webex space")
    audit_log.add_argument("--rotation", metavar="ID", type=int, help="only the entries of this rotation")
    audit_log.add_argument("--limit", metavar="N", type=int, help="only the latest N entries")
    audit_log.set_defaults(run=cmd_audit, needs_config=True)

    rotations = commands.add_parser("rotations", help="list the open rotations of every space with their space "
                                                      "and step; --cancel ID cancels one")
    rotations.add_argument("--cancel", metavar="ID", type=int,
                           help="cancel this rotation if it has not activated anything yet (audited as the "
                                "operator's; its space gets the cancelled card)")
    rotations.set_defaults(run=cmd_rotations, needs_config=True)

    copy_database = commands.add_parser(
        "copy-database", help="copy an SQLite install's data into the configured PostgreSQL database (which must "
                              "be empty), every table with its ids in one transaction, verified by counts")
    copy_database.add_argument("sqlite_file", metavar="SQLITE_FILE", help="the old install's database file")
    copy_database.add_argument("--to", metavar="URL",
                               help="the target store (default: DATABASE_URL or ROLLOVER_DATABASE)")
    copy_database.set_defaults(run=cmd_copy_database, needs_config=True)

    settings = commands.add_parser("settings", help="show the current settings (secrets hidden)")
    settings.add_argument("--markdown", action="store_true", help="print the settings reference as Markdown")
    settings.add_argument("--write-docs", action="store_true",
                          help="regenerate docs/settings.md and the README's settings table")
    settings.set_defaults(run=cmd_settings, needs_config=False)
    _describe_sub_commands(commands)
    return parser


def _describe_sub_commands(commands: argparse._SubParsersAction) -> None:
    """`bot.py serve --help` says what serve does: each sub-command's description is its one-line help."""
    for action in commands._choices_actions:
        sub = commands.choices[action.dest]
        if not sub.description:
            sub.description = action.help[:1].upper() + action.help[1:] + "."


def main(argv: list[str] | None = None, *, chat: ChatLayerFactory | None = None,
         demo: Callable[[argparse.Namespace], int] | None = None) -> int:
    """The command line. ``chat`` builds the layer above the core (handlers and cards) for the sub-commands
    that answer in Webex; ``demo`` runs ``bot.py demo`` (both handed in by bot.py)."""
    parser = build_parser()
    # `check` and `explain` have their own option parsers (certificates/); pass their options through untouched.
    args, passthrough = parser.parse_known_args(argv)
    if args.command in ("check", "explain"):
        args.check_args = passthrough + args.check_args
    elif passthrough:
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    args.chat, args.demo = chat or _no_chat_layer, demo
    try:
        config = load_config() if args.needs_config else None
        configure_logging(config)
        return args.run(args, config)
    except ConfigError as error:
        print(f"bot.py {args.command}: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not is_expected(error):
            raise
        print(f"bot.py {args.command}: {error}", file=sys.stderr)
        return 1


def is_expected(error: Exception) -> bool:
    """A sentence for the person rather than a bug: a UserError, a Retryable, or Webex refusing (WebexError,
    which only a command that loaded the Webex client can raise)."""
    webex = sys.modules.get("rollover.integrations.webex_client")
    return isinstance(error, (UserError, Retryable)) or (webex is not None and isinstance(error, webex.WebexError))


def _no_chat_layer() -> ChatLayer:
    raise ConfigError(["This command needs the chat layer (handlers/ and cards/): run it through bot.py."])
