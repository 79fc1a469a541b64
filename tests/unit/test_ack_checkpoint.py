"""The acknowledgement never pays for a WAL checkpoint: its connection leaves them to the workers' connections."""

from rollover.storage import Storage


def test_the_acknowledgement_connection_does_not_checkpoint_and_the_others_do(tmp_path):
    storage = Storage(tmp_path / "ack.sqlite3")
    storage.migrate()
    assert storage.database.ack_db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    assert storage.database.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
