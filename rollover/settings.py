"""Every setting of the bot, as data: name, default, help, how to parse it.

Settings come from the environment. Where an SDK already has a standard
variable (``WEBEX_ACCESS_TOKEN`` for webexpythonsdk, ``AZURE_*`` for
azure-identity) that name is used. ``docs/settings.md`` is generated from this
table (``python bot.py settings --markdown``) and a test keeps it in step.

Problems are collected and reported together, each naming the setting and
how to fix it, before anything starts.
"""

from __future__ import annotations

import functools
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """One or more settings are missing or invalid; the text says how to fix each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


# --- parsers: each takes the raw text and returns the value or raises ValueError --------

def parse_text(raw: str) -> str:
    return raw.strip()


def parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def parse_positive_int(raw: str) -> int:
    value = parse_int(raw)
    if value <= 0:
        raise ValueError("must be a whole number greater than 0")
    return value


def parse_seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if value <= 0:
        raise ValueError("must be a number of seconds greater than 0")
    return value


def parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def parse_list(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated list; lower-cased because e-mails and domains are case-insensitive."""
    return tuple(item.strip().lower() for item in re.split(r"[,\s]+", raw) if item.strip())


def parse_exact_list(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated list of opaque ids (kept as written)."""
    return tuple(item.strip() for item in re.split(r"[,\s]+", raw) if item.strip())


DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")   # Heroku-style platforms still issue postgres://


def parse_database(raw: str) -> str:
    """An SQLite file path, or a PostgreSQL URL."""
    text = raw.strip()
    if "://" in text and not text.startswith(DATABASE_URL_SCHEMES):
        raise ValueError("must be an SQLite file path or a postgresql:// URL (Rollover stores its data in "
                         "SQLite or PostgreSQL)")
    return text


def parse_database_url(raw: str) -> str:
    text = raw.strip()
    if not text.startswith(DATABASE_URL_SCHEMES):
        raise ValueError("must be a postgresql:// URL (Rollover stores its data in SQLite or PostgreSQL)")
    return text


def redact_url(text: str) -> str:
    """A database URL without its password (user:password@ and ?password=…), anything else as is.

    The user information ends at the LAST "@": a password may hold "/", "?" or "@" itself (unencoded, as people
    paste them), and hiding a little too much is the safe way to be wrong."""
    if "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    if "@" in rest:
        userinfo, _, place = rest.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        rest = f"{user}:<hidden>@{place}" if has_password else f"{userinfo}@{place}"
    return re.sub(r"([?&]password=)[^&]*", r"\1<hidden>", f"{scheme}://{rest}")


def url_password(text: str) -> str:
    """The password of a database URL (for the log filter), "" when it has none."""
    if "://" not in text or "@" not in text:
        return ""
    userinfo = text.partition("://")[2].rpartition("@")[0]
    return userinfo.partition(":")[2]


def parse_guid(raw: str) -> str:
    """An Entra object id such as a group's (a GUID)."""
    text = raw.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text):
        raise ValueError("must be an Entra object id (a GUID such as 9a9a9a9a-0000-4000-8000-0000000a9a01)")
    return text


def parse_days_list(raw: str) -> tuple[int, ...]:
    try:
        days = sorted({int(item) for item in parse_exact_list(raw)}, reverse=True)
    except ValueError:
        raise ValueError("must be whole numbers of days separated by commas, e.g. 60,30,14,7,1") from None
    if not days or any(d < 0 for d in days):
        raise ValueError("must list at least one day count, none negative")
    return tuple(days)


def parse_url(raw: str) -> str:
    text = raw.strip()
    if not re.match(r"^https?://[^/\s]+", text):
        raise ValueError("must be an http(s) URL such as https://bot.example.com")
    return text


def parse_base_url(raw: str) -> str:
    # webexpythonsdk joins paths with urljoin: without the trailing slash "/v1" would be dropped.
    text = parse_url(raw)
    return text if text.endswith("/") else text + "/"


EVENT_MODES = ("webhook", "websocket")


def parse_events_mode(raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in EVENT_MODES:
        raise ValueError("must be webhook or websocket")
    return mode


def parse_timezone(raw: str) -> str:
    """An IANA time zone, whatever its letter case (``europe/stockholm`` is Europe/Stockholm)."""
    name = _zone_names().get(raw.strip().lower(), raw.strip())
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Europe/Stockholm or UTC") from None
    return name


@functools.cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_clock_time(raw: str) -> str:
    """A 24-hour wall-clock time, normalised to HH:MM."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", raw.strip())
    if not match:
        raise ValueError("must be a 24-hour time HH:MM such as 09:00")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_weekday(raw: str) -> str:
    day = raw.strip().lower()
    matches = [name for name in WEEKDAYS if len(day) >= 3 and name.startswith(day)]
    if len(matches) != 1:
        raise ValueError("must be a day of the week such as monday")
    return matches[0]


def parse_non_negative_int(raw: str) -> int:
    value = parse_int(raw)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def parse_port(raw: str) -> int:
    value = parse_int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port number from 1 to 65535")
    return value


def parse_log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
    return level


@dataclass(frozen=True)
class Setting:
    env: str                       # environment variable name
    key: str                       # attribute name on Config
    default: str                   # raw default text ("" = unset)
    help: str
    parse: Callable[[str], Any] = parse_text
    secret: bool = False           # never printed, logged or shown
    fix: str = ""                  # how to fix it when missing/invalid


SETTINGS: tuple[Setting, ...] = (
    # --- Webex -----------------------------------------------------------------------------
    Setting("WEBEX_ACCESS_TOKEN", "webex_access_token", "",
            "The bot's access token (developer.webex.com > My Webex Apps > your bot); `serve` and `worker` "
            "check it at start-up. (`demo` always uses its own local Webex API.)", secret=True,
            fix="create a bot at https://developer.webex.com/my-apps and set its token"),
    Setting("WEBEX_BASE_URL", "webex_base_url", "https://webexapis.com/v1/",
            "Base URL of the Webex REST API (a trailing slash is added).", parse_base_url),
    Setting("ROLLOVER_EVENTS", "events_mode", "webhook",
            "How Webex events reach the bot: `webhook` (Webex POSTs to a public https URL; needs "
            "ROLLOVER_WEBHOOK_SECRET and `webhooks sync`) or `websocket` (the bot opens an outbound websocket "
            "to Webex, like the Webex SDKs: no public URL, no inbound connection, no webhook secret; one "
            "`worker`/`serve` process holds it, the others stand by).", parse_events_mode,
            fix="write webhook or websocket"),
    Setting("ROLLOVER_WEBEX_CATALOG_URL", "webex_catalog_url", "https://u2c.wbx2.com/u2c/api/v1/catalog",
            "Webex's service catalog (u2c), where websocket mode finds its device service; change it only to point "
            "at a local Webex (tests, the demo).", parse_url),
    Setting("ROLLOVER_WEBSOCKET_LEASE_SECONDS", "websocket_lease_seconds", "20",
            "Websocket mode: how long one process holds the connection without renewing; a standby `worker` or "
            "`serve` takes it over when the holder has not renewed for this long (Webex keeps the events meanwhile).",
            parse_seconds),
    Setting("ROLLOVER_WEBHOOK_SECRET", "webhook_secret", "",
            "Shared secret of the Webex webhooks; every delivery's X-Spark-Signature is checked with it "
            "(not needed with ROLLOVER_EVENTS=websocket).",
            secret=True,
            fix="generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`, "
                "set it, then run `python bot.py webhooks sync --url https://YOUR-HOST`"),
    Setting("ROLLOVER_PUBLIC_URL", "public_url", "",
            "Public https URL where Webex reaches this bot (used by `webhooks sync` when --url is not given).",
            parse_url, fix="set it to the https address of this service, e.g. https://rollover.example.com"),
    Setting("ROLLOVER_WEBHOOK_NAME", "webhook_name", "rollover",
            "Name given to the bot's webhooks; `webhooks sync` manages only webhooks of this name."),
    Setting("ROLLOVER_MAX_WEBHOOK_BYTES", "max_webhook_bytes", "65536",
            "Largest webhook body accepted; larger deliveries get 413.", parse_positive_int),
    # --- who may talk to the bot ---------------------------------------------------------------
    Setting("ROLLOVER_ALLOWED_DOMAINS", "allowed_domains", "",
            "E-mail domains whose people may use the bot (comma-separated, e.g. example.com).", parse_list,
            fix="list your organisation's e-mail domains, e.g. ROLLOVER_ALLOWED_DOMAINS=example.com"),
    Setting("ROLLOVER_ALLOWED_PEOPLE", "allowed_people", "",
            "E-mail addresses of people allowed in addition to the domains (comma-separated).", parse_list),
    Setting("ROLLOVER_ALLOWED_ROOMS", "allowed_rooms", "",
            "Webex room ids the bot answers in (comma-separated). Empty: any room with an allowed person.",
            parse_exact_list),
    Setting("ROLLOVER_ALLOW_BOTS", "allow_bots", "false",
            "Answer messages from other bots (the bot never answers itself).", parse_bool),
    # --- certificates -------------------------------------------------------------------------
    Setting("ROLLOVER_WARNING_DAYS", "warning_days", "60",
            "A certificate with this many days left or fewer is 'warning'.", parse_positive_int),
    Setting("ROLLOVER_CRITICAL_DAYS", "critical_days", "14",
            "A certificate with this many days left or fewer is 'critical'.", parse_positive_int),
    Setting("ROLLOVER_MAX_DOCUMENT_BYTES", "max_document_bytes", "5242880",
            "Largest certificate or metadata document read from a file or URL (bytes).", parse_positive_int),
    Setting("ROLLOVER_MAX_SOURCES_PER_SPACE", "max_sources_per_space", "50",
            "Most documents, URLs and Entra apps one space may track (each is re-read for status and explain).",
            parse_positive_int),
    Setting("ROLLOVER_ALLOW_PRIVATE_URLS", "allow_private_urls", "false",
            "Let `check <url>` fetch from private, loopback and link-local addresses (off: no SSRF into "
            "your network from chat).", parse_bool),
    # --- Microsoft Graph (Entra ID) --------------------------------------------------------------
    Setting("AZURE_TENANT_ID", "azure_tenant_id", "",
            "Entra tenant id (GUID) of the app registration the bot signs in with (azure-identity's variable)."),
    Setting("AZURE_CLIENT_ID", "azure_client_id", "",
            "Application (client) id the bot signs in to Graph with (azure-identity's variable)."),
    Setting("AZURE_CLIENT_SECRET", "azure_client_secret", "",
            "Client secret for Graph (or use AZURE_CLIENT_CERTIFICATE_PATH / managed identity).", secret=True),
    Setting("AZURE_CLIENT_CERTIFICATE_PATH", "azure_client_certificate_path", "",
            "PEM/PKCS12 file with the certificate and private key the bot signs in to Graph with."),
    Setting("ROLLOVER_GRAPH_MANAGED_IDENTITY", "graph_managed_identity", "false",
            "Sign in to Graph with the host's managed identity instead of a secret or certificate.", parse_bool),
    Setting("ROLLOVER_GRAPH_BASE_URL", "graph_base_url", "https://graph.microsoft.com/v1.0",
            "Microsoft Graph endpoint (http is accepted only for a local Graph on 127.0.0.1).", parse_url),
    Setting("ROLLOVER_FEDERATION_METADATA_BASE", "federation_metadata_base", "https://login.microsoftonline.com",
            "Where Entra publishes per-app federation metadata ({base}/{tenant}/federationmetadata/...).",
            parse_url),
    # --- reminders and digests ---------------------------------------------------------------
    Setting("ROLLOVER_REMINDER_DAYS", "reminder_days", "60,30,14,7,1",
            "Default reminder thresholds of a space (days before expiry); a space changes its own with "
            "`remind at`.", parse_days_list, fix="list whole numbers of days, e.g. 60,30,14,7,1"),
    Setting("ROLLOVER_REMINDER_TIME", "reminder_time", "09:00",
            "Default local time of a space's daily reminders and weekly digest (`remind time` changes it).",
            parse_clock_time, fix="write a 24-hour time such as 09:00"),
    Setting("ROLLOVER_REMINDER_TIMEZONE", "reminder_timezone", "UTC",
            "Default IANA time zone of a space's reminder time (`remind time 09:00 Europe/Stockholm`).",
            parse_timezone, fix="use an IANA name such as Europe/Stockholm or UTC"),
    Setting("ROLLOVER_REMINDER_FINAL_DAYS", "reminder_final_days", "7",
            "An acknowledged certificate (someone owns it) gets only the thresholds of this many days or "
            "fewer, and the expired card.", parse_non_negative_int,
            fix="give a whole number of days, e.g. 7"),
    Setting("ROLLOVER_DIGEST_WEEKDAY", "digest_weekday", "monday",
            "Day of the weekly digest (every tracked certificate of a space, worst first), sent at the "
            "space's reminder time.", parse_weekday, fix="name a day of the week, e.g. monday"),
    Setting("ROLLOVER_REMINDER_SWEEP_MINUTES", "reminder_sweep_minutes", "5",
            "How often the scheduler (in `worker` and `serve`) looks for due reminders and retries failed "
            "posts; sources are refreshed when a space's daily time has come.",
            parse_positive_int),
    Setting("ROLLOVER_REMINDER_LEASE_SECONDS", "reminder_lease_seconds", "300",
            "How long one process owns a reminder sweep; a crashed sweep is taken over when this ends.",
            parse_seconds),
    # --- rotations and approvals -------------------------------------------------------------
    Setting("ROLLOVER_APPROVERS", "approvers", "",
            "E-mail addresses allowed to approve rotation steps (comma-separated), for every stage without its "
            "own approvers (list or group). No approvers at all: no rotation that changes Entra starts (a Webex SP "
            "rotation Entra does not need changes nothing there, so it needs no approver).", parse_list,
            fix="list the people who may approve Entra changes, e.g. ann@example.com,bo@example.com"),
    Setting("ROLLOVER_APPROVER_GROUP", "approver_group", "",
            "Object id of an Entra group whose members may approve rotation steps of every stage without its own "
            "approvers; membership is checked through Graph at each click (needs GroupMember.Read.All and "
            "User.Read.All).", parse_guid,
            fix="copy the group's Object ID from the Entra admin center > Groups"),
    Setting("ROLLOVER_CREATE_APPROVERS", "create_approvers", "",
            "Approvers (e-mails) of Entra changes that add or remove certificates: creating the signing "
            "certificate, adding Webex's certificate, cleaning up. With this or ROLLOVER_CREATE_APPROVER_GROUP set, "
            "the stage uses only its own approvers; with neither, ROLLOVER_APPROVERS and ROLLOVER_APPROVER_GROUP.",
            parse_list),
    Setting("ROLLOVER_CREATE_APPROVER_GROUP", "create_approver_group", "",
            "Entra group whose members approve the create stage (only its own approvers then, see "
            "ROLLOVER_CREATE_APPROVERS).", parse_guid,
            fix="copy the group's Object ID from the Entra admin center > Groups"),
    Setting("ROLLOVER_ACTIVATE_APPROVERS", "activate_approvers", "",
            "Approvers (e-mails) of switching the certificate that signs sign-ins: activating and rolling back. With "
            "this or ROLLOVER_ACTIVATE_APPROVER_GROUP set, the stage uses only its own approvers; with neither, "
            "ROLLOVER_APPROVERS and ROLLOVER_APPROVER_GROUP.", parse_list),
    Setting("ROLLOVER_ACTIVATE_APPROVER_GROUP", "activate_approver_group", "",
            "Entra group whose members approve the activate stage (only its own approvers then, see "
            "ROLLOVER_ACTIVATE_APPROVERS).", parse_guid,
            fix="copy the group's Object ID from the Entra admin center > Groups"),
    Setting("ROLLOVER_REQUIRED_APPROVALS", "required_approvals", "1",
            "Approvals each rotation step needs, from different approvers (2 = two-person rule).",
            parse_positive_int),
    Setting("ROLLOVER_ALLOW_SELF_APPROVAL", "allow_self_approval", "false",
            "Let the person who requested a rotation approve its steps (off: someone else must).", parse_bool),
    Setting("ROLLOVER_APPROVAL_HOURS", "approval_hours", "24",
            "An approval request not decided within this many hours expires (an 'expired' card says so).",
            parse_positive_int),
    Setting("ROLLOVER_WINDOW_GRACE_MINUTES", "window_grace_minutes", "60",
            "An activation approved (or a scheduled one reached) more than this many minutes after its maintenance "
            "window started is not run: the rotation asks for a new window, since nobody may be ready to import "
            "the certificate into Webex any more.", parse_positive_int),
    Setting("ROLLOVER_REPORT_ONLY", "report_only", "false",
            "Run rotations without changing Entra: every Graph write is replaced by its dry-run description, "
            "posted in the space and audited.", parse_bool),
    Setting("ROLLOVER_GRAPH_CONSISTENCY_SECONDS", "graph_consistency_seconds", "300",
            "How long a rotation waits for Graph (and the federation metadata) to show its own change, or a "
            "request a crashed process may have sent, before deciding.", parse_seconds),
    Setting("ROLLOVER_ROTATION_LEASE_SECONDS", "rotation_lease_seconds", "900",
            "How long one worker owns a rotation step; a crashed worker's step is resumed when it ends. Keep it "
            "above ROLLOVER_GRAPH_CONSISTENCY_SECONDS.", parse_seconds),
    Setting("ROLLOVER_ROTATION_SWEEP_SECONDS", "rotation_sweep_seconds", "30",
            "How often `worker` and `serve` expire overdue approvals, start scheduled activations and resume "
            "interrupted rotations.", parse_seconds),
    # --- storage and worker -----------------------------------------------------------------
    Setting("ROLLOVER_DATABASE", "database_path", "var/rollover.sqlite3",
            "Where the data lives: the path of an SQLite file (created with its folder when missing), or a "
            "PostgreSQL URL `postgresql://user:password@host:5432/database` (the store every process of several "
            "hosts shares; its password is never shown). When unset, `DATABASE_URL` is used if set.",
            parse_database, fix="point it at a writable file path or a PostgreSQL database"),
    Setting("DATABASE_URL", "database_url", "",
            "The PostgreSQL URL Heroku-style platforms (Heroku, Dokku, Render …) give the app; used when "
            "ROLLOVER_DATABASE is not set.", parse_database_url, secret=True),
    Setting("ROLLOVER_WORKER_LEASE_SECONDS", "worker_lease_seconds", "60",
            "How long a worker owns a claimed event; after a crash the event is retried when the lease ends.",
            parse_seconds),
    Setting("ROLLOVER_WORKER_POLL_SECONDS", "worker_poll_seconds", "0.5",
            "How often an idle worker looks for new events it was not woken for (the web process wakes the "
            "workers of its host after each event).", parse_seconds),
    Setting("ROLLOVER_WORKER_THREADS", "worker_threads", "4",
            "Events a worker process (or `serve`) handles at the same time; one person's messages in a space, and "
            "a space's card clicks, are still handled one after the other, in order.", parse_positive_int),
    Setting("ROLLOVER_WORKER_SLOW_THREADS", "worker_slow_threads", "4",
            "Events still running after a quarter of a second (a document or URL being read, a Graph write) "
            "move to this many extra threads, so they never hold up the chat of others.", parse_non_negative_int),
    Setting("ROLLOVER_WORKER_MAX_ATTEMPTS", "worker_max_attempts", "8",
            "Attempts per event (Webex 429/5xx are retried with backoff) before it is marked failed.",
            parse_positive_int),
    Setting("ROLLOVER_EVENT_RETENTION_DAYS", "event_retention_days", "30",
            "Days a handled (or failed) event is kept after it finished, so that a redelivery of it is recognised "
            "and not handled twice (Webex redelivers for hours); older ones, with their record of the posts "
            "made, are deleted by the workers every hour.", parse_positive_int),
    Setting("ROLLOVER_LOG_LEVEL", "log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.", parse_log_level),
    # --- metrics (off unless one of the first two is set) -----------------------------------------
    Setting("ROLLOVER_METRICS_TOKEN", "metrics_token", "",
            "Serve Prometheus metrics at GET /metrics of the webhook service to requests with "
            "`Authorization: Bearer <this token>` (the figures of every process of this host).", secret=True),
    Setting("ROLLOVER_METRICS_PORT", "metrics_port", "",
            "Serve Prometheus metrics at GET /metrics on this port of `worker` (or `serve`) instead, bound to "
            "ROLLOVER_METRICS_HOST; with a token set it is required there too.", parse_port),
    Setting("ROLLOVER_METRICS_HOST", "metrics_host", "127.0.0.1",
            "The address the metrics port listens on (loopback by default: for a scraper on this host).",
            parse_text),
)

SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """Parsed settings. Attribute names are the ``key`` column of ``SETTINGS``."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(f"no setting named {key!r}") from None

    def replace(self, **changes: Any) -> "Config":
        unknown = set(changes) - set(SETTINGS_BY_KEY)
        if unknown:
            raise KeyError(f"unknown settings: {', '.join(sorted(unknown))}")
        return Config({**self.values, **changes})

    def require(self, *keys: str) -> None:
        """Raise ConfigError naming every required setting that is empty."""
        problems = [_missing_message(SETTINGS_BY_KEY[k]) for k in keys if not self.values.get(k)]
        if problems:
            raise ConfigError(problems)

    @property
    def graph_configured(self) -> bool:
        """Whether Graph credentials (or a loopback Graph) are set; without them Entra features explain how."""
        loopback = re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])[:/]", self.graph_base_url or "")
        return bool(self.azure_client_secret or self.azure_client_certificate_path
                    or self.graph_managed_identity or loopback)

    @property
    def websocket_events(self) -> bool:
        """Events arrive over the outbound websocket: no webhook secret, no public URL."""
        return self.events_mode == "websocket"

    def require_access_control(self) -> None:
        """Fail closed: a bot that can change SSO certificates must know who may use it."""
        if not (self.allowed_domains or self.allowed_people):
            raise ConfigError([
                "Nobody is allowed to use the bot: set ROLLOVER_ALLOWED_DOMAINS (e.g. example.com) "
                "and/or ROLLOVER_ALLOWED_PEOPLE (e-mail addresses)."])

    def redacted(self) -> dict[str, str]:
        """Values safe to print: secrets show only whether they are set."""
        return {s.env: ("<set>" if self.values.get(s.key) else "<unset>") if s.secret
                else _display(self.values.get(s.key)) for s in SETTINGS}


def _display(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return "" if value is None else redact_url(str(value))


def _missing_message(setting: Setting) -> str:
    fix = setting.fix or f"set it ({setting.help})"
    return f"{setting.env} is not set: {fix}."


_EMPTY: dict[Callable[[str], Any], Any] = {parse_list: (), parse_exact_list: (), parse_bool: False}


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read and validate every setting; overrides (by key) are already-parsed values."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.env, "").strip() or setting.default
        if not raw:
            values[setting.key] = _EMPTY.get(setting.parse, "")
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as error:
            shown = "<hidden>" if setting.secret else repr(redact_url(raw))
            fix = f" ({setting.fix})" if setting.fix else ""
            problems.append(f"{setting.env}={shown} {error}{fix}.")
    if not problems and values["critical_days"] >= values["warning_days"]:
        problems.append(f"ROLLOVER_CRITICAL_DAYS={values['critical_days']} must be smaller than "
                        f"ROLLOVER_WARNING_DAYS={values['warning_days']}, or 'warning' can never happen.")
    if problems:
        raise ConfigError(problems)
    if values["database_url"] and not environ.get("ROLLOVER_DATABASE", "").strip():
        values["database_path"] = values["database_url"]      # the platform's database
    config = Config(values)
    return config.replace(**overrides) if overrides else config


def settings_table() -> str:
    """The settings as a Markdown table, generated from ``SETTINGS``."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(unset)"
        lines.append(f"| `{s.env}` | {default} | {s.help}{' Secret: never logged.' if s.secret else ''} |")
    return "\n".join(lines) + "\n"


def settings_markdown() -> str:
    """The settings reference page (docs/settings.md)."""
    return ("# Settings\n\nGenerated by `python bot.py settings --write-docs` from `settings.py`; every setting "
            "is read from the environment and validated at start-up.\n\n" + settings_table())


README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"


def readme_with_settings(readme: str) -> str:
    """The README with its generated settings block replaced by the current table."""
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{settings_table()}{README_END}{tail}"
