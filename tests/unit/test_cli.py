"""Command line: demo transcript, interactive demo, webhook management, secrets kept out of logs."""

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bot
from rollover import VERSION
from rollover.integrations.webex_client import WebexClient
from rollover.logging_setup import RedactSecrets
from rollover.pipeline.webhooks import sync_webhooks

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_the_conversation_through_signed_webhooks():
    out = _play_demo()
    assert out.startswith("Rollover demo: local Webex API at ") and "websocket" not in out.splitlines()[0]
    sent = re.search(r"\((\d+) signed webhooks delivered\)\.$", out.rstrip())
    assert sent and int(sent[1]) >= 25, out[-300:]
    assert "Webex events: webhooks (POST /webhooks/webex)" in out                          # `about`


def test_demo_over_the_websocket_plays_every_scene_with_no_webhook():
    out = _play_demo("--events", "websocket")
    assert out.startswith("Rollover demo over the Webex websocket (ROLLOVER_EVENTS=websocket, no webhooks)")
    counts = re.search(r"\((\d+) websocket frames sent, (\d+) acknowledged after their events were recorded, "
                       r"0 webhooks delivered\)\.$", out.rstrip())
    assert counts and int(counts[1]) >= 25 and counts[1] == counts[2], out[-300:]
    transcript = out.split("\n", 1)[1].split("Demo finished")[0]
    assert "a cardAction frame on the websocket" in transcript and "webhook" not in transcript.lower()
    assert "Webex events: websocket: connected since" in out and "; last event" in out    # `about`, live


def _play_demo(*options: str) -> str:
    """`bot.py demo` in a fresh process; every scene must have played (the same checks in both modes)."""
    result = subprocess.run([sys.executable, "bot.py", "demo", *options], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "Alice Admin  help" in out and "[card]" in out
    assert "Did you mean `help`?" in out
    assert "clicks [About]" in out and "Version: " + VERSION in out
    assert "Webex SP metadata (Control Hub" in out and "Entra federation metadata" in out
    assert "clicks [Watch in this space]" in out and "No upload to Azure needed" in out
    assert "Entra token-signing certificate · Done" in out and "Webex SP certificate · Done" in out
    assert "**graph-result**" in out                          # the audit log of both rotations
    return out


def test_interactive_demo_answers_typed_messages_and_clicks():
    result = subprocess.run([sys.executable, "bot.py", "demo", "--interactive"], cwd=ROOT, text=True,
                            input="help\nclick About\nclick Nope\nquit\n", capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Show what I can do." in result.stdout
    assert "Version: " + VERSION in result.stdout
    assert "no card with a [Nope] button" in result.stdout


@pytest.fixture
def webex_api(local_webex):
    bot_person, token = local_webex.add_bot()
    return local_webex, WebexClient(token, local_webex.base_url), token


def test_webhooks_sync_creates_both_webhooks_then_is_idempotent(webex_api):
    webex, client, _ = webex_api
    report = sync_webhooks(client, name="rollover", public_url="https://bot.example.com", secret="s" * 32)
    assert len(report.created) == 2
    hooks = webex.webhooks()
    assert {(h["resource"], h["event"]) for h in hooks} == {("messages", "created"), ("attachmentActions", "created")}
    assert {h["targetUrl"] for h in hooks} == {"https://bot.example.com/webhooks/webex"}
    again = sync_webhooks(client, name="rollover", public_url="https://bot.example.com", secret="s" * 32)
    assert again.created == [] and again.deleted == [] and len(again.unchanged) == 2
    assert len(webex.webhooks()) == 2


def test_webhooks_sync_reactivates_moves_and_cleans_up_only_its_own(webex_api):
    webex, client, _ = webex_api
    sync_webhooks(client, name="rollover", public_url="https://old.example.com", secret="s" * 32)
    messages_hook = next(h for h in webex.webhooks() if h["resource"] == "messages")
    webex.disable_webhook(messages_hook["id"])
    client.create_webhook(name="rollover", target_url="https://old.example.com/webhooks/webex",
                          resource="messages", event="created", secret="x")               # a duplicate
    client.create_webhook(name="rollover", target_url="https://old.example.com/webhooks/webex",
                          resource="rooms", event="created", secret="x")                  # stale resource
    client.create_webhook(name="someone-else", target_url="https://other.example.com/hook",
                          resource="messages", event="created", secret="x")
    report = sync_webhooks(client, name="rollover", public_url="https://new.example.com", secret="n" * 32)
    assert len(report.updated) == 2 and len(report.deleted) == 2
    ours = [h for h in webex.webhooks() if h["name"] == "rollover"]
    assert len(ours) == 2
    assert all(h["status"] == "active" and h["targetUrl"] == "https://new.example.com/webhooks/webex" for h in ours)
    assert any(h["name"] == "someone-else" for h in webex.webhooks())


def test_webhooks_cli_sync_and_list(webex_api, monkeypatch, capsys):
    webex, _, token = webex_api
    monkeypatch.setenv("WEBEX_ACCESS_TOKEN", token)
    monkeypatch.setenv("WEBEX_BASE_URL", webex.base_url)
    monkeypatch.setenv("ROLLOVER_WEBHOOK_SECRET", "cli-secret-value")
    assert bot.main(["webhooks", "sync", "--url", "http://bot.example.com"]) == 2     # http refused
    assert "https only" in capsys.readouterr().err
    assert bot.main(["webhooks", "sync", "--url", "https://bot.example.com"]) == 0
    assert "created  messages/created -> https://bot.example.com/webhooks/webex" in capsys.readouterr().out
    assert bot.main(["webhooks", "list"]) == 0
    listing = capsys.readouterr().out
    assert "attachmentActions/created" in listing and "cli-secret-value" not in listing


def test_log_lines_never_carry_secrets():
    secret = "super-secret-webhook-key"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([secret]))
    log = logging.getLogger("redaction-test")
    log.addHandler(handler)
    log.propagate = False
    log.warning("secret is %s", secret)
    log.warning("header Authorization: Bearer abc.def-ghi")
    try:
        raise ValueError(f"failed with {secret}")
    except ValueError:
        log.exception("boom")
    text = stream.getvalue()
    assert secret not in text and "abc.def-ghi" not in text
    assert text.count("***") >= 3


def test_check_is_reachable_from_bot_py_with_its_own_options(tmp_path, capsys):
    import json as json_lib
    from datetime import datetime, timedelta, timezone

    from cryptography.hazmat.primitives import serialization

    from tests.support.certfactory import make_cert
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    cert, _ = make_cert("expiring.example.com", now - timedelta(days=300), now + timedelta(days=10))
    path = tmp_path / "expiring.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert bot.main(["check", "--json", "--now", "2026-06-01T00:00:00Z", str(path)]) == 2   # critical
    report = json_lib.loads(capsys.readouterr().out)
    assert report["sources"][0]["certificates"][0]["days_left"] == 10
    assert bot.main(["check", str(tmp_path / "missing.pem")]) == 3


def test_check_uses_the_bots_thresholds_from_the_environment(tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from tests.support.certfactory import make_cert, pem_of
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    path = tmp_path / "cert.pem"
    path.write_bytes(pem_of(make_cert("a.example.com", now - timedelta(days=10), now + timedelta(days=100))[0]))
    assert bot.main(["check", "--now", "2026-06-01T00:00:00Z", str(path)]) == 0
    monkeypatch.setenv("ROLLOVER_WARNING_DAYS", "120")
    assert bot.main(["check", "--now", "2026-06-01T00:00:00Z", str(path)]) == 1


def test_read_only_commands_refuse_a_database_that_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROLLOVER_DATABASE", str(tmp_path / "typo.sqlite3"))
    assert bot.main(["audit"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert bot.main(["remind", "--dry-run"]) == 2
    assert not (tmp_path / "typo.sqlite3").exists()
