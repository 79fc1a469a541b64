"""The acknowledgement path: signature first, durable record, quick 200."""

import json

import pytest

import bot
from rollover import VERSION
from rollover.pipeline.webhooks import signature_for
from rollover.storage import Storage

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def app(store):
    """The webhook service on each store (SQLite and PostgreSQL)."""
    app = bot.create_app({"database_path": store, "webhook_secret": SECRET})
    yield app
    app.extensions["rollover"]["storage"].dispose()


@pytest.fixture
def storage(app):
    return app.extensions["rollover"]["storage"]


def envelope(data_id="MSG-1", resource="messages"):
    return json.dumps({"id": "WH", "name": "rollover", "resource": resource, "event": "created",
                       "actorId": "P1", "data": {"id": data_id, "roomId": "R1", "personId": "P1"}}).encode()


def post(client, body, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Spark-Signature"] = signature
    return client.post("/webhooks/webex", data=body, headers=headers)


def test_a_correctly_signed_event_is_recorded_and_acknowledged(app, storage):
    body = envelope()
    response = post(app.test_client(), body, signature_for(SECRET, body))
    assert response.status_code == 200 and response.json == {"status": "accepted"}
    assert storage.events.count("pending") == 1


@pytest.mark.parametrize("signature", [None, "", "0" * 40, "not-hex", "é" * 40,
                                       signature_for("another-secret", envelope())])
def test_missing_or_forged_signatures_get_401_and_record_nothing(app, storage, signature):
    response = post(app.test_client(), envelope(), signature)
    assert response.status_code == 401
    assert storage.events.count("pending") == 0


def test_a_signature_over_a_different_body_is_refused(app, storage):
    signed = envelope("MSG-1")
    tampered = envelope("MSG-2")   # same length, other message id
    assert post(app.test_client(), tampered, signature_for(SECRET, signed)).status_code == 401
    assert storage.events.count("pending") == 0


def test_the_signature_is_checked_over_the_raw_bytes_not_reserialised_json(app, storage):
    body = b'{ "resource":"messages","event":"created","data":{"id":"MSG-9"} }'
    assert post(app.test_client(), body, signature_for(SECRET, body).upper()).status_code == 200
    assert storage.events.count("pending") == 1


def test_a_replayed_delivery_is_acknowledged_but_handled_once(app, storage):
    body = envelope()
    client = app.test_client()
    assert post(client, body, signature_for(SECRET, body)).json == {"status": "accepted"}
    # PostgreSQL's inbox tells a replay at once; SQLite's spool takes it again and the worker's move drops it.
    replayed = {"sqlite": "accepted", "postgresql": "duplicate"}[storage.dialect]
    assert post(client, body, signature_for(SECRET, body)).json == {"status": replayed}
    storage.events.admit_all()
    assert storage.events.count("pending") == 1


def test_oversized_and_malformed_bodies_are_refused(app, storage):
    client = app.test_client()
    huge = b"{" + b" " * 70_000 + b"}"
    assert post(client, huge, signature_for(SECRET, huge)).status_code == 413
    junk = b"not json"
    assert post(client, junk, signature_for(SECRET, junk)).status_code == 400
    assert storage.events.count("pending") == 0


def test_unsubscribed_resources_are_acknowledged_and_dropped(app, storage):
    body = envelope(resource="memberships")
    assert post(app.test_client(), body, signature_for(SECRET, body)).json == {"status": "ignored"}
    assert storage.events.count("pending") == 0


def test_healthz_reports_database_version_store_and_the_event_backlog(app, store):
    client = app.test_client()
    health = client.get("/healthz").json
    assert health == {
        "status": "ok", "version": VERSION, "database": "ok", "store": health["store"],
        "events": {"pending": 0, "failed": 0, "oldest_pending_seconds": 0}}
    assert health["store"].startswith("PostgreSQL rollover@127.0.0.1:" if store.startswith("postgresql")
                                      else "SQLite /")
    body = envelope()
    post(client, body, signature_for(SECRET, body))
    events = client.get("/healthz").json["events"]
    assert events["pending"] == 1 and events["oldest_pending_seconds"] >= 0


def test_create_app_refuses_to_run_without_a_webhook_secret(tmp_path):
    from rollover.settings import ConfigError
    with pytest.raises(ConfigError, match="ROLLOVER_WEBHOOK_SECRET"):
        bot.create_app({"database_path": str(tmp_path / "r.sqlite3"), "webhook_secret": ""})


def test_an_acknowledged_event_survives_a_new_process(app, storage, tmp_path):
    body = envelope("MSG-7")
    post(app.test_client(), body, signature_for(SECRET, body))
    reopened = Storage(storage.location)   # as a restarted process would
    assert reopened.events.claim("w", lease_seconds=10).data_id == "MSG-7"


def test_acknowledgements_from_many_threads_are_all_recorded_once(app, storage):
    """The threads of one process queue for the acknowledgement's write (no 'database is locked')."""
    import threading
    failures = []

    def deliver(thread_number):
        client = app.test_client()
        for n in range(40):
            body = envelope(f"MSG-{thread_number}-{n}")
            response = post(client, body, signature_for(SECRET, body))
            if response.status_code != 200:
                failures.append(response.status_code)

    threads = [threading.Thread(target=deliver, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and storage.events.count("pending") == 320


def test_the_web_process_is_tuned_for_the_acknowledgements_tail(app):
    import gc
    import sys

    from rollover.web import ACK_SWITCH_INTERVAL
    assert sys.getswitchinterval() == pytest.approx(ACK_SWITCH_INTERVAL)
    assert gc.get_freeze_count() > 0    # the start-up heap is out of the cycle collector's passes


@pytest.mark.parametrize("store_kind", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_dropped_app_closes_its_notify_connection_itself(store):
    """Not left to the garbage collector, whose psycopg warning would land in some unrelated test."""
    import gc
    app = bot.create_app({"database_path": store, "webhook_secret": SECRET})
    body = envelope("MSG-notify")
    assert post(app.test_client(), body, signature_for(SECRET, body)).status_code == 200
    channel = app.extensions["rollover"]["wake_channel"]
    connection = channel._connection
    assert connection is not None and not connection.closed      # the web process keeps it between events
    app.extensions["rollover"]["storage"].dispose()
    del app
    gc.collect()
    assert connection.closed and channel._connection is None
