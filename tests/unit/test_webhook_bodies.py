"""Hostile webhook bodies get a clean 4xx at the door: oversized chunked bodies, deep JSON, odd field types."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from werkzeug.serving import make_server

import bot
from rollover.pipeline.webhooks import signature_for

SECRET = "webhook-secret-for-tests"
MAX = 64 * 1024


@pytest.fixture
def app(tmp_path):
    return bot.create_app({"database_path": str(tmp_path / "r.sqlite3"), "webhook_secret": SECRET,
                           "max_webhook_bytes": MAX})


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def post_chunked(port: int, body: bytes, chunk: int = 8192) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/webhooks/webex")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("X-Spark-Signature", signature_for(SECRET, body))
    connection.endheaders()
    try:
        for start in range(0, len(body), chunk):
            part = body[start:start + chunk]
            connection.send(b"%x\r\n%s\r\n" % (len(part), part))
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass   # the server may answer 413 and close before the whole body is sent
    status = connection.getresponse().status
    connection.close()
    return status


def signed(client, body: bytes):
    return client.post("/webhooks/webex", data=body, headers={"X-Spark-Signature": signature_for(SECRET, body),
                                                              "Content-Type": "application/json"})


def envelope(data_id) -> bytes:
    return json.dumps({"resource": "messages", "event": "created", "data": {"id": data_id}}).encode()


def test_a_chunked_body_over_the_limit_is_refused_whole(served, app):
    padding = "x" * (3 * MAX)
    body = json.dumps({"resource": "messages", "event": "created", "data": {"id": "M1"}, "pad": padding}).encode()
    assert post_chunked(served, body) == 413
    assert app.extensions["rollover"]["storage"].events.count("pending") == 0


def test_a_chunked_body_within_the_limit_is_accepted(served, app):
    assert post_chunked(served, envelope("M2")) == 200
    assert app.extensions["rollover"]["storage"].events.count("pending") == 1


def test_json_nested_thirty_thousand_levels_deep_is_a_bad_request(app):
    body = b"[" * 30_000 + b"]" * 30_000
    assert len(body) <= MAX
    assert signed(app.test_client(), body).status_code == 400


@pytest.mark.parametrize("data_id", [123, None, ["M1"], {"id": "M1"}, "", "x" * 2000])
def test_a_data_id_that_is_not_a_short_string_is_refused_at_the_door(app, data_id):
    assert signed(app.test_client(), envelope(data_id)).status_code == 400
    assert app.extensions["rollover"]["storage"].events.count("pending") == 0


@pytest.mark.parametrize("body", [b'{"resource": ["messages"], "event": "created", "data": {"id": "M1"}}',
                                  b'{"resource": "messages", "event": "created", "data": "M1"}',
                                  b'[1, 2, 3]', b'"text"', b"\xff\xfe not json"])
def test_other_odd_shapes_are_bad_requests(app, body):
    assert signed(app.test_client(), body).status_code == 400


def test_a_body_whose_end_cannot_be_told_gets_411_not_a_signature_error(app):
    body = envelope("M3")
    environ = {"wsgi.input_terminated": False}
    response = app.test_client().post("/webhooks/webex", input_stream=__import__("io").BytesIO(body),
                                      headers={"X-Spark-Signature": signature_for(SECRET, body),
                                               "Transfer-Encoding": "chunked"}, environ_overrides=environ)
    assert response.status_code == 411
