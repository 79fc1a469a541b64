"""The floors for bench/webhook_ack.py: the least a correct webhook endpoint must do (verify the HMAC).

Two of them: the HMAC check as a Flask route (the issue's floor, from when the app answered in Flask), and the
same check as a plain WSGI callable, the simplest code that does it (the app answers webhooks in plain WSGI)."""

import hashlib
import hmac
import os

from flask import Flask, request


def create_floor_app() -> Flask:
    secret = os.environ["FLOOR_SECRET"].encode()
    app = Flask(__name__)

    @app.post("/webhooks/webex")
    def webhook():
        body = request.get_data(cache=False)
        expected = hmac.new(secret, body, hashlib.sha1).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Spark-Signature", "")):
            return {"error": "invalid signature"}, 401
        return {"status": "accepted"}, 200

    return app


def create_wsgi_floor_app():
    secret = os.environ["FLOOR_SECRET"].encode()
    accepted, refused = b'{"status":"accepted"}\n', b'{"error":"invalid signature"}\n'

    def webhook(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        expected = hmac.new(secret, body, hashlib.sha1).hexdigest()
        valid = hmac.compare_digest(expected, environ.get("HTTP_X_SPARK_SIGNATURE", ""))
        answer = accepted if valid else refused
        start_response("200 OK" if valid else "401 Unauthorized",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    return webhook
