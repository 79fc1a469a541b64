"""The cross-process wake-up: a web process pokes the worker processes of its host after recording an event."""

import os
import socket
import threading

import pytest

from rollover.pipeline import wakeup
from rollover.pipeline.wakeup import SocketWakeChannel, wake_channel_for, wake_folder


def test_a_poke_from_another_channel_of_the_same_database_wakes_the_listener(tmp_path):
    woken = threading.Event()
    stop = wake_channel_for(str(tmp_path / "bot.sqlite3")).listen(woken.set)
    try:
        wake_channel_for(str(tmp_path / "bot.sqlite3")).notify()      # as the web process would
        assert woken.wait(10)
    finally:
        stop()


def test_every_listening_worker_is_poked_and_a_stopped_one_leaves_nothing_behind(tmp_path):
    channel = SocketWakeChannel(tmp_path / "wake")
    woken = [threading.Event(), threading.Event()]
    stops = [channel.listen(event.set) for event in woken]
    channel.notify()
    assert all(event.wait(10) for event in woken)
    for stop in stops:
        stop()
    assert os.listdir(tmp_path / "wake") == []
    channel.notify()                                                  # nobody listens: nothing happens


def test_the_socket_of_a_killed_worker_is_removed_at_the_next_poke(tmp_path):
    folder = tmp_path / "wake"
    folder.mkdir(mode=0o700)                                          # as a worker's listen() makes it
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(folder / "w1-dead.sock"))
    dead.close()                                                      # as kill -9 leaves it: the file stays
    SocketWakeChannel(folder).notify()
    assert os.listdir(folder) == []


def test_without_a_listening_worker_a_poke_is_a_no_op(tmp_path):
    SocketWakeChannel(tmp_path / "nobody").notify()
    assert not (tmp_path / "nobody").exists()


def test_a_deep_database_path_still_gets_a_socket_folder_within_the_path_limit(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6, "bot.sqlite3")
    folder = wake_folder(str(deep))
    assert len(str(folder)) + 24 <= 100 and folder == wake_folder(str(deep))
    woken = threading.Event()
    stop = wake_channel_for(str(deep)).listen(woken.set)
    try:
        wake_channel_for(str(deep)).notify()
        assert woken.wait(10)
    finally:
        stop()


@pytest.mark.postgres
def test_with_postgresql_a_notify_wakes_a_listener_on_any_host(postgres_database):
    woken = threading.Event()
    stop = wake_channel_for(postgres_database).listen(woken.set)
    try:
        assert woken.wait(30)                 # its first look, once LISTEN runs
        woken.clear()
        notifier = wake_channel_for(postgres_database)
        notifier.notify()                     # as the web process does after the commit
        assert woken.wait(10)
        notifier.close()
    finally:
        stop()


def test_a_folder_that_is_not_privately_ours_is_never_used(tmp_path):
    """In a shared /tmp another user may create the folder first, or make it a symlink to one of ours."""
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (target / "keep.sock").write_text("not a socket")
    link = tmp_path / "wake"
    link.symlink_to(target)
    channel = SocketWakeChannel(link)
    stop = channel.listen(lambda: None)                    # refused: no socket is bound there
    channel.notify()                                       # refused: nothing there is poked or unlinked
    stop()
    assert sorted(p.name for p in target.iterdir()) == ["keep.sock"]
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    SocketWakeChannel(open_folder).listen(lambda: None)()
    assert list(open_folder.iterdir()) == []


def test_the_folder_of_a_database_server_is_not_named_after_its_password():
    with_password = wake_folder("postgresql://rollover:one-secret@db.example/rollover")
    other_password = wake_folder("postgresql://rollover:another@db.example/rollover")
    assert with_password == other_password               # the name does not depend on (nor reveal) the password


def test_one_look_at_the_folder_serves_the_events_of_the_next_second_and_a_new_worker_is_found_after(
        tmp_path, monkeypatch):
    """Every poke used to cost a system call or two (lstat, stat) even with no worker listening; now one look
    serves TARGETS_TTL seconds of events, and a worker that starts meanwhile is poked from the next look on."""
    folder = tmp_path / "wake"
    looks = []
    real_lstat = os.lstat
    monkeypatch.setattr(wakeup.os, "lstat", lambda path, *a, **k: (
        looks.append(path) if str(path) == str(folder) else None) or real_lstat(path, *a, **k))
    monkeypatch.setattr(wakeup, "TARGETS_TTL", 0.3)
    web = SocketWakeChannel(folder)
    for _ in range(50):
        web.notify()                                         # nobody listens: one look, not fifty
    assert len(looks) == 1
    woken = threading.Event()
    stop = SocketWakeChannel(folder).listen(woken.set)      # a worker starts
    try:
        web.notify()
        assert not woken.wait(0.1)                           # its first events: found by its poll
        threading.Event().wait(0.3)
        web.notify()                                         # the next look finds it
        assert woken.wait(10)
    finally:
        stop()


def test_a_folder_closed_again_after_being_open_to_others_is_used_again(tmp_path, monkeypatch):
    """Opening the folder to others (a chmod leaves its mtime as it was) stops the pokes; closing it again brings
    them back, though no worker came or went in between."""
    monkeypatch.setattr(wakeup, "TARGETS_TTL", 0.0)
    folder = tmp_path / "wake"
    woken = threading.Event()
    stop = SocketWakeChannel(folder).listen(woken.set)
    web = SocketWakeChannel(folder)
    try:
        web.notify()
        assert woken.wait(10)
        woken.clear()
        folder.chmod(0o777)
        web.notify()
        assert not woken.wait(0.2)                           # not private: nobody poked
        folder.chmod(0o700)
        web.notify()
        assert woken.wait(10)
    finally:
        stop()
