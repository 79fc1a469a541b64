"""/metrics: off by default, behind a bearer token or on a port of its own, one sum over the host's processes,
the figures the issue lists, and never a secret."""

import socket

import requests

from tests.support.processes import start_worker, wait_until, worker_environment

TOKEN = "metrics-token-0f4c2a9e"
GRAPH_SECRET = "azure-client-secret-77b1"


def scrape(chat, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return chat.client.get("/metrics", headers=headers)


def samples(text: str) -> dict[str, float]:
    """'name{labels}' -> value, for the sample lines of an exposition."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """What changed since ``before`` (a database server's metrics folder outlives one test's database)."""
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


def test_metrics_are_off_unless_configured(chat):
    assert scrape(chat).status_code == 404


def test_the_token_is_required_and_checked(make_chat):
    chat = make_chat(metrics_token=TOKEN)
    assert scrape(chat, None).status_code == 401
    assert scrape(chat, "wrong-token").status_code == 401
    assert scrape(chat, TOKEN + "x").status_code == 401
    response = scrape(chat)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")


def test_events_reminders_rotations_webex_calls_and_certificates_are_counted(demo_graph, make_chat):
    chat = make_chat(graph=demo_graph, metrics_token=TOKEN)
    before = samples(scrape(chat).get_data(as_text=True))
    chat.say(chat.alice, "help")
    chat.say(chat.alice, "watch Cisco Webex")                      # an Entra app: its certificates are tracked
    chat.webex.inject_fault("POST", r"/messages$", 429, retry_after=0)
    chat.say(chat.alice, "status", process=False)
    chat.worker.drain()                                             # the 429: retried later, not yet handled
    found = delta(samples(scrape(chat).get_data(as_text=True)), before)
    assert found['rollover_events_received_total{outcome="accepted",resource="messages"}'] == 3
    assert found['rollover_events_handled_total{resource="messages"}'] == 2
    assert found['rollover_events_retried_total{resource="messages"}'] == 1
    assert samples(scrape(chat).get_data(as_text=True))["rollover_events_pending"] == 1
    assert found['rollover_webex_requests_total{status="429"}'] == 1
    assert found['rollover_webex_requests_total{status="2xx"}'] > 3
    assert found['rollover_graph_requests_total{status="2xx"}'] >= 1
    days = {name: value for name, value in found.items() if name.startswith("rollover_certificate_days_left{")}
    assert days and all(f'space="{chat.room.id}"' in name and 'sha1="' in name for name in days)
    assert "rollover_rotations" in scrape(chat).get_data(as_text=True)
    assert "rollover_lease_takeovers_total" in scrape(chat).get_data(as_text=True)
    assert "rollover_reminders_posted_total" in scrape(chat).get_data(as_text=True)


def test_no_secret_reaches_the_metrics(demo_graph, make_chat):
    # Graph credentials set (never used here: nothing asks Graph), and a metadata URL with a SAS token.
    chat = make_chat(metrics_token=TOKEN, azure_tenant_id="5f1c2d3e-0000-4000-8000-00000000d3e0",
                     azure_client_id="0ab4c0de-0000-4000-8000-00000000f001", azure_client_secret=GRAPH_SECRET)
    url = demo_graph.metadata_url("0ab4c0de-0000-4000-8000-00000000a001") + "&sig=SECRET-SAS-TOKEN"
    chat.say(chat.alice, f"check {url}")
    body, headers = chat.webex.webhook_event("messages", "created", chat.webex.post_as(chat.alice, chat.room,
                                                                                        "status")["id"])
    headers["X-Spark-Signature"] = "0" * 40                         # a refused delivery is counted too
    chat.client.post("/webhooks/webex", data=body, headers=headers)
    text = scrape(chat).get_data(as_text=True)
    assert "rollover_certificate_days_left{" in text and 'outcome="refused 401"' in text
    for secret in (TOKEN, GRAPH_SECRET, chat.config.webhook_secret, chat.token, "SECRET-SAS-TOKEN"):
        assert secret not in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_process_serves_the_sum_of_every_process_on_its_own_port(make_chat):
    chat = make_chat(metrics_token=TOKEN)
    port = free_port()
    env = {**worker_environment(chat, lease_seconds=30.0), "ROLLOVER_METRICS_PORT": str(port)}
    worker = start_worker(env)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert wait_until(lambda: _up(url)), "the worker did not serve its metrics port"
        before = samples(requests.get(url, timeout=5).text)
        chat.say(chat.alice, "help", process=False)                 # recorded here, handled by the worker process
        assert wait_until(lambda: chat.webex.sent_by_bot(chat.room))

        def handled_here_and_there(text: str) -> bool:
            found = delta(samples(text), before)
            return (found.get('rollover_events_received_total{outcome="accepted",resource="messages"}') == 1
                    and found.get('rollover_events_handled_total{resource="messages"}') == 1)
        assert wait_until(lambda: handled_here_and_there(requests.get(url, timeout=5).text))   # the worker's port
        assert handled_here_and_there(scrape(chat).get_data(as_text=True))                      # the web app
        assert requests.get(url.replace("/metrics", "/other"), timeout=5).status_code == 404
    finally:
        worker.terminate()
        worker.wait(10)


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_metrics_stay_off_when_their_folder_is_not_private(tmp_path):
    from rollover import metrics
    from rollover.settings import load_config
    config = load_config({}).replace(database_path=str(tmp_path / "bot.sqlite3"), metrics_token=TOKEN)
    folder = metrics.metrics_folder(config.database_path)
    folder.mkdir()
    folder.chmod(0o777)                       # as another user of a shared /tmp could have left it
    assert metrics.enable(config) is False
