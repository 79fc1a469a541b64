"""The floor for bench/webhook_ack.py: the least a correct webhook endpoint must do (verify the HMAC)."""

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
