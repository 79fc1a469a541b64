"""POST /webhooks/webex is answered in plain WSGI before Flask: every answer of the path is given there, and every
other request reaches Flask unchanged."""

from __future__ import annotations

import http.client
import io
import json
import logging

import pytest
from werkzeug.test import EnvironBuilder

import bot
from rollover.pipeline.webhooks import signature_for
from rollover.webhook_endpoint import PATH, content_length, read_body
from tests.support.processes import start_gunicorn
from tests.unit.test_webhook_endpoint import SECRET, envelope

MAX = 64 * 1024


@pytest.fixture
def app(tmp_path):
    app = bot.create_app({"database_path": str(tmp_path / "r.sqlite3"), "webhook_secret": SECRET,
                          "max_webhook_bytes": MAX})
    yield app
    app.extensions["rollover"]["storage"].dispose()


def pending(app) -> int:
    return app.extensions["rollover"]["storage"].events.count("pending")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "HEAD"])
def test_other_methods_on_the_webhook_path_get_405_naming_post(app, method):
    response = app.test_client().open(PATH, method=method)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert (response.data == b"") == (method == "HEAD")      # a HEAD's answer has no body


def test_other_paths_reach_flask(app):
    client = app.test_client()
    assert client.get("/healthz").json["status"] == "ok"
    assert client.post("/webhooks/webex/").status_code == 404       # Flask's answer: no such route
    assert client.get("/nothing-here").status_code == 404


def test_answers_are_json_with_their_length(app):
    body = envelope("M1")
    response = app.test_client().post(PATH, data=body, headers={"X-Spark-Signature": signature_for(SECRET, body)})
    assert response.status_code == 200 and response.json == {"status": "accepted"}
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data)


class Unreadable(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the body was read")


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read():
    environ = {"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(MAX + 1)}
    assert read_body(environ, MAX).status == 413


def test_a_body_shorter_than_its_content_length_is_refused_not_verified():
    environ = {"wsgi.input": io.BytesIO(b"{}"), "CONTENT_LENGTH": "10"}
    assert read_body(environ, MAX).status == 400


@pytest.mark.parametrize("header, expected", [("12", 12), (" 7 ", 7), ("0", 0), ("", None), ("-1", None),
                                              ("1_0", None), ("²", None), ("0x10", None), ("1e3", None)])
def test_only_a_plain_number_is_a_content_length(header, expected):
    assert content_length({"CONTENT_LENGTH": header}) == expected


@pytest.mark.parametrize("coding", ["chunked", "Chunked", "gzip, chunked"])
def test_a_chunked_body_has_no_declared_length_even_with_a_content_length_header(coding):
    assert content_length({"CONTENT_LENGTH": "5", "HTTP_TRANSFER_ENCODING": coding}) is None


def test_a_length_of_thousands_of_digits_is_no_length():
    assert content_length({"CONTENT_LENGTH": "9" * 5000}) is None


class Trickle(io.RawIOBase):
    """A stream that hands out at most three bytes per read, as PEP 3333 allows."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, size=-1):
        part, self.data = self.data[:min(size, 3)], self.data[min(size, 3):]
        return part


def test_a_body_is_read_whole_however_many_reads_it_takes():
    body = envelope("M5")
    assert read_body({"wsgi.input": Trickle(body), "CONTENT_LENGTH": str(len(body))}, MAX) == body


class Broken(io.RawIOBase):
    def read(self, size=-1):
        raise OSError("Invalid chunk header")


def test_a_body_that_cannot_be_read_is_a_bad_request_in_json(app):
    environ = EnvironBuilder(path=PATH, method="POST", headers={"Transfer-Encoding": "chunked"}).get_environ()
    environ.update({"wsgi.input": Broken(), "wsgi.input_terminated": True})
    statuses = []
    answer = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["400 Bad Request"] and json.loads(answer) == {"error": "the body could not be read"}
    assert pending(app) == 0


def test_a_length_that_is_not_a_number_and_no_chunked_stream_gets_411(app):
    body = envelope("M2")
    response = app.test_client().post(PATH, input_stream=io.BytesIO(body), environ_overrides={
        "CONTENT_LENGTH": "lots", "wsgi.input_terminated": False},
        headers={"X-Spark-Signature": signature_for(SECRET, body)})
    assert response.status_code == 411 and pending(app) == 0


def test_a_failure_to_record_is_a_500_with_an_incident_id_and_a_logged_traceback(app, caplog):
    storage = app.extensions["rollover"]["storage"]

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    storage.events.record = broken
    body = envelope("M3")
    with caplog.at_level(logging.ERROR):
        response = app.test_client().post(PATH, data=body, headers={"X-Spark-Signature": signature_for(SECRET, body)})
    assert response.status_code == 500
    incident = response.json["incident"]
    record = next(r for r in caplog.records if incident in r.getMessage())
    assert record.exc_info is not None
    assert SECRET not in caplog.text and SECRET not in response.get_data(as_text=True)


def test_requests_after_refusals_on_one_kept_alive_connection_are_answered_in_turn(tmp_path):
    """Under gunicorn, on one connection kept alive: a 405 to a PUT whose body is never read, an acknowledgement,
    /healthz, then a 413 (last: gunicorn closes a connection after a body over the limit). Each answer is its own
    request's: an unread body is not taken for the next request."""
    process, port = start_gunicorn("bot:create_app()", {
        "ROLLOVER_WEBHOOK_SECRET": SECRET, "ROLLOVER_DATABASE": str(tmp_path / "g.sqlite3"),
        "ROLLOVER_MAX_WEBHOOK_BYTES": str(MAX)}, ["--workers", "1", "--threads", "2", "--log-level", "warning"],
        cwd=tmp_path)   # threads: gunicorn's gthread worker, the one that keeps connections alive
    body, huge = envelope("M4"), b"{" + b" " * MAX + b"}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.connect()
    kept = connection.sock
    answers = []

    def exchange(method: str, path: str, payload: bytes | None = None) -> None:
        headers = {"X-Spark-Signature": signature_for(SECRET, payload)} if payload else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
        assert connection.sock is kept      # http.client would reconnect quietly had the server closed it
    try:
        exchange("PUT", PATH, envelope("not read"))
        exchange("POST", PATH, body)
        exchange("GET", "/healthz")
        connection.request("POST", PATH, body=huge, headers={"X-Spark-Signature": signature_for(SECRET, huge)})
        answers.append((connection.getresponse().status, None))
    finally:
        connection.close()
        process.terminate()
        process.wait(10)
    assert [status for status, _ in answers] == [405, 200, 200, 413]
    assert answers[1][1] == {"status": "accepted"} and answers[2][1]["events"]["pending"] == 1
