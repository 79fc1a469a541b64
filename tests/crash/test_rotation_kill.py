"""A rotation survives SIGKILL at every step: the worker process is killed while Graph or Webex stalls,
restarted, and the rotation completes with exactly one certificate creation and one activation."""

import signal
import threading
import time

import pytest

from fakes.webex import ApiFailure
from tests.support.processes import start_worker, wait_until, worker_environment
from tests.support.rotation_helpers import (
    MEETINGS_APP,
    MEETINGS_APPLICATION_ID,
    WEBEX_APP,
    activations,
    active_thumbprint,
    add_member,
    creations,
    drop,
    rotation_overrides,
    site_admin_metadata,
)

LEASE_SECONDS = 1.5


@pytest.fixture
def rotation_chat(make_chat, demo_graph):
    chat = make_chat(graph=demo_graph, **rotation_overrides(demo_graph))
    chat.carol = add_member(chat, "carol@example.com", "Carol Checker")
    return chat


def rotation_worker_environment(chat) -> dict:
    config = chat.config
    return {**worker_environment(chat, lease_seconds=1.0),
            "ROLLOVER_GRAPH_BASE_URL": config.graph_base_url,
            "ROLLOVER_FEDERATION_METADATA_BASE": config.federation_metadata_base,
            "AZURE_TENANT_ID": config.azure_tenant_id,
            "ROLLOVER_APPROVERS": ",".join(config.approvers),
            "ROLLOVER_GRAPH_CONSISTENCY_SECONDS": "5",
            "ROLLOVER_ROTATION_LEASE_SECONDS": str(LEASE_SECONDS),
            "ROLLOVER_ROTATION_SWEEP_SECONDS": "0.2"}


class Stall:
    """Make one local-server method block until released; ``arrived`` is set when a request hits it."""

    def __init__(self, owner, name: str, *, when=lambda *args: True, fail_after_release: bool = False):
        self.owner, self.name = owner, name
        self.arrived, self.released = threading.Event(), threading.Event()
        original = getattr(owner, name)

        def stalled(*args, **kwargs):
            if when(*args):
                self.arrived.set()
                self.released.wait(30)
                if fail_after_release:
                    raise ApiFailure(503, "The connection was lost.")   # the request never took effect
            return original(*args, **kwargs)
        setattr(owner, name, stalled)

    def release(self) -> None:
        delattr(self.owner, self.name)            # answer normally from now on
        self.released.set()


class Workers:
    """The worker processes of one test: start one, kill the current one mid-step."""

    def __init__(self, env):
        self.env, self.current = env, None

    def start(self) -> None:
        self.current = start_worker(self.env)

    def kill_when(self, stall: Stall) -> None:
        assert stall.arrived.wait(20), "the worker never reached the stalled request"
        self.current.send_signal(signal.SIGKILL)
        self.current.wait(10)
        stall.release()

    def stop(self) -> None:
        if self.current and self.current.poll() is None:
            self.current.terminate()
            self.current.wait(10)


def state(chat) -> str:
    """The rotation's state once its card is in the space ("" while it is still being posted)."""
    record = chat.services.storage.rotations.all(open_only=False)[-1]
    return record.state if record.announced_version == record.version else ""


def wait_for_state(chat, expected: str, timeout: float = 20) -> None:
    assert wait_until(lambda: state(chat) == expected, timeout), f"still {state(chat)!r}, not {expected!r}"


def press(chat, person, button: str) -> None:
    """A click whose webhook is recorded for the worker processes (the test's own worker stays idle)."""
    chat.click(person, chat.last_card_message()["id"], button=button, process=False)


def test_an_entra_signing_rotation_killed_at_every_step(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    before = active_thumbprint(graph)
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    workers = Workers(rotation_worker_environment(chat))
    try:
        # Killed while Graph is creating the certificate (the POST takes effect after the kill).
        creating = Stall(graph, "_add_token_signing_certificate")
        workers.start()
        press(chat, chat.bob, "Approve")
        workers.kill_when(creating)
        # Restarted, then killed while Webex stalls on the certificate file (which never gets posted).
        posting = Stall(chat.webex, "_api_messages_create", when=lambda caller, request: bool(request.files),
                        fail_after_release=True)
        workers.start()
        workers.kill_when(posting)
        workers.start()
        wait_for_state(chat, "awaiting-window")
        press(chat, chat.alice, "Now: I'm ready")
        wait_for_state(chat, "awaiting-activate-approval")
        # Killed while Graph applies the activation, then while the federation metadata is read.
        activating = Stall(graph, "_patch_service_principal",
                           when=lambda sp, body, behaviour: "preferredTokenSigningKeyThumbprint" in body)
        verifying = Stall(graph, "federation_metadata")
        press(chat, chat.carol, "Approve")
        workers.kill_when(activating)
        workers.start()
        workers.kill_when(verifying)
        workers.start()
        wait_for_state(chat, "awaiting-sign-in-test")
        press(chat, chat.alice, "Sign-in works")
        wait_for_state(chat, "done")
        time.sleep(LEASE_SECONDS + 0.5)                   # longer than a lease: nothing runs twice later
    finally:
        workers.stop()
    assert creations(graph) == 1 and len(activations(graph)) == 1
    assert active_thumbprint(graph) not in (None, before)
    names = [posted["name"] for posted in chat.webex.files_posted]
    assert len([n for n in names if n.endswith(".cer")]) == 1 and len([n for n in names if n.endswith(".xml")]) == 1
    live_cards = [m for m in chat.webex.sent_by_bot(chat.room) if m.get("attachments")]
    assert len(live_cards) == 1                              # every superseded card was deleted


def test_a_webex_sp_rotation_killed_while_entra_takes_the_certificate(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    drop(chat, "Webex_SP_saml2_metadata.xml", site_admin_metadata(days_left=365))
    chat.say(chat.alice, f"rotate webex-sp {MEETINGS_APP}")
    keys_before = len(graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"])
    workers = Workers(rotation_worker_environment(chat))
    try:
        uploading = Stall(graph, "_patch_application")
        workers.start()
        press(chat, chat.bob, "Approve")
        workers.kill_when(uploading)
        workers.start()
        wait_for_state(chat, "awaiting-webex-activation")
        press(chat, chat.alice, "Activated in Webex")
        wait_for_state(chat, "done")
    finally:
        workers.stop()
    assert len(graph.requests_matching("PATCH", r"/applications/")) == 1
    assert len(graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"]) == keys_before + 1
