"""The README's local path, followed step by step as real processes: ``python -m fakes.webex``, ``bot.py serve``,
``bot.py webhooks sync --allow-http``, a message from a person, and a click on the reply's button."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.processes import wait_until
from tests.unit.test_serve import _healthy, free_port

ROOT = Path(__file__).resolve().parents[2]
README_STEPS = ("python -m fakes.webex --port 8090", "python bot.py serve --port 8080",
                "python bot.py webhooks sync --url http://127.0.0.1:8080 --allow-http",
                "/v1/messages", "/v1/attachment/actions")


def test_the_readme_documents_the_local_path():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for step in README_STEPS:
        assert step in readme


@pytest.fixture
def local_webex_process():
    """``python -m fakes.webex`` on a free port, and what it printed (its exports, the person's token, the room)."""
    process = subprocess.Popen([sys.executable, "-m", "fakes.webex", "--port", str(free_port())], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    printed = {}
    try:
        for line in process.stdout:
            if match := re.match(r"export (\w+)=(\S+)", line):
                printed[match.group(1)] = match.group(2)
            if "BOT_ID" in printed:
                break
        yield printed
    finally:
        process.terminate()
        process.wait(10)


def test_the_local_path_works_end_to_end(local_webex_process, tmp_path):
    webex = local_webex_process
    api, as_alice = webex["WEBEX_BASE_URL"], {"Authorization": "Bearer " + webex["ALICE_TOKEN"]}
    port = free_port()
    env = {**os.environ, "WEBEX_BASE_URL": api, "WEBEX_ACCESS_TOKEN": webex["WEBEX_ACCESS_TOKEN"],
           "ROLLOVER_WEBHOOK_SECRET": "local-secret", "ROLLOVER_ALLOWED_DOMAINS": "example.com",
           "ROLLOVER_DATABASE": str(tmp_path / "rollover.sqlite3"), "ROLLOVER_LOG_LEVEL": "WARNING"}
    serve = subprocess.Popen([sys.executable, "bot.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _healthy(f"http://127.0.0.1:{port}")), "serve did not come up"
        sync = subprocess.run([sys.executable, "bot.py", "webhooks", "sync", "--url", f"http://127.0.0.1:{port}",
                               "--allow-http"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert sync.returncode == 0, sync.stderr

        # Alice writes "@Rollover help" in the space, as a Webex client does.
        requests.post(api + "messages", headers=as_alice, timeout=5, json={
            "roomId": webex["ROOM_ID"], "markdown": f"<@personId:{webex['BOT_ID']}|Rollover> help"}
        ).raise_for_status()
        help_card = _wait_for_bot_message(api, as_alice, webex, count=1)
        button = next(a for a in help_card["attachments"][0]["content"]["actions"] if a["type"] == "Action.Submit")

        # She clicks the help card's first button: Webex fires the attachmentActions webhook.
        clicked = requests.post(api + "attachment/actions", headers=as_alice, timeout=5, json={
            "type": "submit", "messageId": help_card["id"], "inputs": button["data"]})
        assert clicked.status_code == 202
        answer = _wait_for_bot_message(api, as_alice, webex, count=2)
        assert answer["id"] != help_card["id"]
    finally:
        serve.terminate()
        serve.wait(10)


def _wait_for_bot_message(api: str, headers: dict, webex: dict, *, count: int) -> dict:
    """The bot's newest message once it has posted ``count`` in the space."""
    found: list[dict] = []

    def posted() -> bool:
        items = requests.get(api + "messages", headers=headers, params={"roomId": webex["ROOM_ID"]}, timeout=5)
        found[:] = [m for m in items.json()["items"] if m["personId"] == webex["BOT_ID"]]
        return len(found) >= count
    assert wait_until(posted, timeout=30), f"the bot posted {len(found)} of {count} messages"
    return found[0]    # newest first, as Webex lists them
