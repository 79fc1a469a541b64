"""The one claim / lease / retry helper: backoff and owner ids."""

from __future__ import annotations

import os

from rollover import leases


def test_backoff_grows_honours_retry_after_and_is_capped():
    assert [leases.backoff_seconds(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert leases.backoff_seconds(1, retry_after=30) == 30
    assert leases.backoff_seconds(1, retry_after=3600) == leases.MAX_BACKOFF_SECONDS
    assert leases.backoff_seconds(40) == leases.MAX_BACKOFF_SECONDS


def test_a_forked_child_gets_owner_ids_of_its_own():
    read, write = os.pipe()
    parent = leases.lease_owner()
    pid = os.fork()
    if pid == 0:   # the child: report its owner id and leave at once
        os.write(write, leases.lease_owner().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    assert child and child.rsplit(":", 1)[0] != parent.rsplit(":", 1)[0]
