"""Configuration as data: every setting documented, validated with errors that say how to fix them."""

from pathlib import Path

import pytest

import bot
from rollover.settings import SETTINGS, ConfigError, load_config, readme_with_settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_settings_doc_and_readme():
    doc = (ROOT / "docs" / "settings.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert doc == settings_markdown(), "docs/settings.md is stale: run `make settings-doc`"
    assert readme == readme_with_settings(readme), "README settings table is stale: run `make settings-doc`"
    for setting in SETTINGS:
        assert setting.help, setting.env
        assert f"`{setting.env}`" in doc
        assert setting.env in readme, f"README does not mention {setting.env}"


def test_defaults_load_without_environment():
    config = load_config({})
    assert config.database_path == "var/rollover.sqlite3"
    assert config.allowed_domains == ()
    assert config.webex_base_url.endswith("/")


def test_invalid_values_are_all_reported_with_the_setting_name():
    with pytest.raises(ConfigError) as caught:
        load_config({"ROLLOVER_WORKER_POLL_SECONDS": "soon", "ROLLOVER_ALLOW_BOTS": "maybe",
                     "WEBEX_BASE_URL": "webexapis.com"})
    text = str(caught.value)
    assert "ROLLOVER_WORKER_POLL_SECONDS='soon' must be a number of seconds" in text
    assert "ROLLOVER_ALLOW_BOTS='maybe' must be true or false" in text
    assert "WEBEX_BASE_URL" in text


def test_thresholds_that_contradict_each_other_are_refused():
    with pytest.raises(ConfigError, match="ROLLOVER_CRITICAL_DAYS=30 must be smaller than ROLLOVER_WARNING_DAYS=5"):
        load_config({"ROLLOVER_WARNING_DAYS": "5", "ROLLOVER_CRITICAL_DAYS": "30"})


def test_secret_values_are_never_echoed_in_errors():
    with pytest.raises(ConfigError) as caught:
        load_config({"ROLLOVER_WEBHOOK_SECRET": "s3cr3t-value"}).require("webex_access_token")
    assert "s3cr3t-value" not in str(caught.value)
    assert "WEBEX_ACCESS_TOKEN is not set" in str(caught.value)
    assert load_config({"ROLLOVER_WEBHOOK_SECRET": "s3cr3t-value"}).redacted()["ROLLOVER_WEBHOOK_SECRET"] == "<set>"


def test_lists_are_split_and_lowercased():
    config = load_config({"ROLLOVER_ALLOWED_DOMAINS": "Example.COM, corp.example.org",
                          "ROLLOVER_ALLOWED_ROOMS": "Y2lzY29z:A  Y2lzY29z:B"})
    assert config.allowed_domains == ("example.com", "corp.example.org")
    assert config.allowed_rooms == ("Y2lzY29z:A", "Y2lzY29z:B")


def test_serve_refuses_to_start_without_token_secret_and_access_control(monkeypatch, capsys):
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    assert bot.main(["serve"]) == 2
    err = capsys.readouterr().err        # every problem at once, not one per attempt
    assert "WEBEX_ACCESS_TOKEN is not set" in err and "ROLLOVER_WEBHOOK_SECRET is not set" in err
    assert "ROLLOVER_ALLOWED_DOMAINS" in err


def test_serve_refuses_a_token_webex_does_not_accept(monkeypatch, capsys, local_webex):
    local_webex.add_bot()
    monkeypatch.setenv("WEBEX_ACCESS_TOKEN", "revoked-token")
    monkeypatch.setenv("WEBEX_BASE_URL", local_webex.base_url)
    monkeypatch.setenv("ROLLOVER_WEBHOOK_SECRET", "s" * 20)
    monkeypatch.setenv("ROLLOVER_ALLOWED_DOMAINS", "example.com")
    assert bot.main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "WEBEX_ACCESS_TOKEN was refused by Webex (401)" in err and "revoked-token" not in err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        bot.main(["--help"])
    out = capsys.readouterr().out
    for name in ("serve", "worker", "demo", "webhooks", "settings"):
        assert name in out


def test_the_worker_needs_no_webhook_secret(monkeypatch, capsys):
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    assert bot.main(["worker"]) == 2
    err = capsys.readouterr().err        # it receives no webhooks: only the token and access control are asked for
    assert "WEBEX_ACCESS_TOKEN is not set" in err and "ROLLOVER_WEBHOOK_SECRET" not in err


@pytest.mark.parametrize("name", ["serve", "worker", "remind", "audit", "rotations", "webhooks"])
def test_each_sub_command_help_says_what_it_does(capsys, name):
    with pytest.raises(SystemExit):
        bot.main([name, "--help"])
    out = capsys.readouterr().out
    assert out.split("\n\n")[1].strip(), f"`bot.py {name} --help` has no description"


def test_check_help_explains_the_exit_codes(capsys):
    assert bot.main(["check", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {code}  {word}" in out for code, word in ((0, "OK"), (1, "WARNING"), (2, "CRITICAL"),
                                                             (3, "UNKNOWN")))


def test_events_mode_is_webhook_by_default_and_websocket_needs_no_webhook_secret():
    assert load_config({}).events_mode == "webhook" and not load_config({}).websocket_events
    config = load_config({"ROLLOVER_EVENTS": "WebSocket"})
    assert config.websocket_events
    assert config.webex_catalog_url == "https://u2c.wbx2.com/u2c/api/v1/catalog"
    with pytest.raises(ConfigError, match="ROLLOVER_EVENTS='smoke-signals' must be webhook or websocket"):
        load_config({"ROLLOVER_EVENTS": "smoke-signals"})


def test_serve_in_websocket_mode_needs_no_webhook_secret(monkeypatch, capsys):
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("ROLLOVER_EVENTS", "websocket")
    assert bot.main(["serve"]) == 2
    err = capsys.readouterr().err        # events come over the websocket: no secret, no public URL asked for
    assert "WEBEX_ACCESS_TOKEN is not set" in err and "ROLLOVER_WEBHOOK_SECRET" not in err


def test_database_url_selects_postgresql_unless_rollover_database_is_set():
    url = "postgres://app:pa55word@db.internal:5432/rollover"
    assert load_config({"DATABASE_URL": url}).database_path == url                       # the platform's variable
    assert load_config({"DATABASE_URL": url, "ROLLOVER_DATABASE": "data/r.sqlite3"}).database_path == "data/r.sqlite3"
    assert load_config({"ROLLOVER_DATABASE": url.replace("postgres:", "postgresql:")}).database_path.startswith(
        "postgresql://app:")


def test_a_database_password_is_never_shown():
    url = "postgresql://app:pa55word@db.internal:5432/rollover?sslmode=require&password=pa55word"
    shown = load_config({"DATABASE_URL": url}).redacted()
    assert "pa55word" not in str(shown)
    assert shown["ROLLOVER_DATABASE"].startswith("postgresql://app:<hidden>@db.internal:5432/rollover")
    assert shown["DATABASE_URL"] == "<set>"
    with pytest.raises(ConfigError) as caught:
        load_config({"ROLLOVER_DATABASE": "mysql://app:pa55word@db/rollover"})
    assert "pa55word" not in str(caught.value) and "SQLite file path or a postgresql:// URL" in str(caught.value)


@pytest.mark.parametrize("url, password", [
    ("postgresql://rollover:s3cr%zzet@db.example:5432/rollover", "s3cr%zzet"),
    ("postgresql://u:ab/cd@db.example/rollover", "ab/cd"),
    ("postgresql://u:p@ss?w0rd@db.example/rollover", "p@ss?w0rd"),
    ("postgresql://u:pass word@db.example/rollover", "pass word"),
])
def test_a_database_password_never_shows_whatever_it_holds(monkeypatch, capsys, url, password):
    from rollover.logging_setup import secret_values
    from rollover.settings import redact_url
    assert password not in redact_url(url) and "<hidden>" in redact_url(url)
    monkeypatch.setenv("ROLLOVER_DATABASE", url)
    assert password in secret_values(None)                   # the log filter knows it
    bot.main(["settings"])
    bot.main(["remind", "--dry-run"])                         # cannot connect (or read the URL): says so, safely
    out, err = capsys.readouterr()
    assert password not in out + err and "Traceback" not in err
