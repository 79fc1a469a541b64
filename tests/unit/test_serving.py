"""serve's HTTP server answers on a fixed pool of threads that keep their database connections."""

import threading

import requests

from rollover.pipeline.webhooks import signature_for
from rollover.serving import PooledWSGIServer
from rollover.web import create_app
from tests.unit.test_webhook_endpoint import SECRET, envelope


def signed_event(data_id):
    body = envelope(data_id)
    return body, {"Content-Type": "application/json", "X-Spark-Signature": signature_for(SECRET, body)}


def test_webhooks_are_acknowledged_by_the_same_few_threads_with_their_own_connections(tmp_path):
    app = create_app({"database_path": str(tmp_path / "serve.sqlite3"), "webhook_secret": SECRET})
    storage = app.extensions["rollover"]["storage"]
    threads, connections = set(), set()
    record = storage.events.record

    def recording(*args, **kwargs):
        threads.add(threading.current_thread().name)
        result = record(*args, **kwargs)
        connections.add(id(storage.database.ack_db))
        return result
    storage.events.record = recording
    server = PooledWSGIServer("127.0.0.1", 0, app, threads=3)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/webex"
    try:
        def send(n):
            with requests.Session() as session:          # keep-alive: several requests on one connection
                for i in range(10):
                    body, headers = signed_event(f"M-{n}-{i}")
                    assert session.post(url, data=body, headers=headers, timeout=10).status_code == 200
        senders = [threading.Thread(target=send, args=(n,)) for n in range(6)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
    finally:
        server.shutdown()
        server.server_close()
    assert storage.events.count("pending") == 60
    assert len(threads) <= 3 and all(name.startswith("rollover-http") for name in threads)
    assert len(connections) == len(threads)      # one connection per thread, kept across its requests
