"""The rotation state machines, declared: each step's state, its transitions, its guidance and its buttons.

Adding a step means adding its ``State`` (kind, what the card calls it, its approvers or step function,
its timeout, the sentence its card leads with, its buttons and the phase of the step indicator it belongs to)
and its transitions, here. The engine (``rollover.rotation.engine``) runs them; the chat layer's card draws
``guide``, ``buttons_for`` and ``Machine.progress`` ("1 Create ✓ · 2 Window ✓ · 3 Activate · 4 Verify · 5 Done").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rollover.rotation import guidance as say
from rollover.rotation import steps
from rollover.rotation.guidance import approval_needed
from rollover.rotation.steps import Outcome, Step
from rollover.rotation.view import RotationView
from rollover.storage import RotationRecord

APPROVAL, OPERATOR, RUNNING, WAITING, TERMINAL = "approval", "operator", "running", "waiting", "terminal"


@dataclass(frozen=True)
class Button:
    """A button on a step's card. ``name`` is the core's word for it; the chat layer maps it to the card action
    id its handler answers (handlers/actions.py: ROTATION_BUTTONS)."""

    title: str
    name: str
    style: str | None = None                     # "positive" | "destructive"
    shown: Callable[[RotationView], bool] | None = None   # shown only when this holds


APPROVE = Button("Approve", "approve", "positive")
REJECT = Button("Reject", "reject", "destructive")
CANCEL = Button("Cancel rotation", "cancel")
ROLL_BACK = Button("Roll back", "rollback", "destructive")
APPROVAL_BUTTONS = (APPROVE, REJECT, CANCEL)


@dataclass(frozen=True)
class State:
    name: str
    kind: str
    step: str                                    # what `rotations` and the cards call this step (step_for)
    stage: str | None = None                     # approval states: which approvers ("create" / "activate")
    run: Callable[[Step], Outcome] | None = None  # running states: the step function
    timeout: str | None = None                   # "approval": approval hours after entering; "window": its start
    on_timeout: str | None = None                # the event fired when the deadline passes
    guidance: Callable[[RotationView], str] | None = None   # the card's sentence (default: the step name)
    buttons: tuple[Button, ...] = ()             # the card's buttons, in order
    phase: str | None = None                     # its phase of the step indicator; None: the rotation stopped

    def step_for(self, plan: dict) -> str:
        """The step's name in this rotation: "{relying_party}" names who trusts the certificate, since an Entra
        signing rotation serves any SAML app, not only Webex."""
        return self.step.format(relying_party=say.relying_party(plan))

    def guide(self, view: RotationView) -> str:
        return self.guidance(view) if self.guidance else self.step_for(view.plan) + "…"

    def buttons_for(self, view: RotationView) -> list[Button]:
        return [button for button in self.buttons if button.shown is None or button.shown(view)]


@dataclass(frozen=True)
class Phase:
    """A numbered step of the indicator on rotation cards. ``applies`` leaves it out of rotations that skip it
    (a Webex certificate Entra does not need is never added to Entra)."""

    name: str
    applies: Callable[[RotationView], bool] | None = None


DONE = "Done"


@dataclass(frozen=True)
class Machine:
    kind: str
    label: str
    states: dict[str, State]
    transitions: dict[tuple[str, str], str]      # (state, event) -> next state
    phases: tuple[Phase, ...] = ()

    def state(self, name: str) -> State:
        return self.states[name]

    def progress(self, view: RotationView) -> list[tuple[int, str, str]]:
        """The step indicator: (number, phase, "done" | "current" | "next") for each phase that applies;
        empty once the rotation stopped short of Done (cancelled, failed, expired, rolled back)."""
        current = self.states[view.state].phase
        phases = [p.name for p in self.phases if p.applies is None or p.applies(view)]
        if current not in phases:
            return []
        at = phases.index(current)
        finished = current == DONE
        return [(number, name, "done" if index < at or finished else "current" if index == at else "next")
                for number, (index, name) in enumerate(enumerate(phases), start=1)]

    def allows(self, state: str, event: str) -> bool:
        return (state, event) in self.transitions

    def target(self, state: str, event: str) -> str:
        try:
            return self.transitions[(state, event)]
        except KeyError:
            raise InvalidTransition(f"a {self.kind} rotation in state {state!r} does not accept {event!r}") from None


class InvalidTransition(Exception):
    """A bug: code asked for a transition the machine does not declare."""


def machine(kind: str, label: str, states: list[State], transitions: list[tuple[str, str, str]],
            phases: tuple[Phase, ...]) -> Machine:
    by_name = {s.name: s for s in states + TERMINAL_STATES}
    table = {}
    for source, event, target in transitions:
        if source not in by_name or target not in by_name:
            raise ValueError(f"{kind}: transition {source} --{event}--> {target} names an undeclared state")
        table[(source, event)] = target
    names = [p.name for p in phases]
    if not names or names[-1] != DONE:
        raise ValueError(f"{kind}: the step indicator ends with {DONE!r}")
    for state in states:
        if state.phase not in names:
            raise ValueError(f"{kind}: state {state.name} belongs to no phase of the step indicator {names}")
    return Machine(kind, label, by_name, table, phases)


def first_approval(state: str, *, approved: str) -> list[tuple[str, str, str]]:
    """The transitions of the approval that starts a rotation: nothing has changed yet, so Reject and Cancel
    end it, and so does its timeout."""
    return [(state, "approved", approved), (state, "rejected", "cancelled"), (state, "cancelled", "cancelled"),
            (state, "timed-out", "expired")]


def _cleanup_offered(view: RotationView) -> bool:
    """After an Entra signing rotation that replaced a certificate for real, the old one can be removed."""
    return view.kind == "entra-signing" and bool(view.plan.get("current")) and not view.data.get("simulated")


TERMINAL_STATES = [
    State("done", TERMINAL, "Done", guidance=say.done, phase=DONE,
          buttons=(Button("Clean up old certificate", "cleanup", shown=_cleanup_offered),)),
    State("cancelled", TERMINAL, "Cancelled", guidance=lambda v: (
        f"{v.last_decision}: nothing more happens in this rotation.{say.left_inactive(v)}")),
    State("rolled-back", TERMINAL, "Rolled back", guidance=lambda v: (
        f"Rolled back: Entra signs with {v.current_thumbprint} again. Import the federation metadata file above "
        f"into {say.trust_text(v, 'import_place')} again.{say.left_inactive(v)}")),
    State("failed", TERMINAL, "Failed", guidance=say.failed),
    State("expired", TERMINAL, "Expired", guidance=lambda v: (
        f"Expired: {v.last_detail} {say.start_again(v)}{say.left_inactive(v)}")),
]

ENTRA_SIGNING = machine("entra-signing", "Entra token-signing certificate", [
    State("awaiting-create-approval", APPROVAL, "Waiting for approval to create the new certificate",
          stage="create", timeout="approval", on_timeout="timed-out",
          guidance=approval_needed("create the new certificate in Entra (inactive: sign-ins are not affected)"),
          buttons=APPROVAL_BUTTONS, phase="Create"),
    State("creating", RUNNING, "Creating the new certificate in Entra", run=steps.create_certificate,
          phase="Create"),
    State("awaiting-window", OPERATOR, "Waiting for a maintenance window",
          guidance=lambda v: (
              f"{say.missed_window(v)}The new certificate {say.new_certificate(v)} is in Entra, inactive. Choose "
              f"when to activate it ({v.time_zone}), or Now. {say.one_idp_certificate(v.plan)}: import it there in "
              "that same window."),
          buttons=(Button("Schedule this window", "window", "positive"), Button("Now: I'm ready", "window-now"),
                   CANCEL), phase="Window"),
    State("awaiting-activate-approval", APPROVAL, "Waiting for approval to activate the new certificate",
          stage="activate", timeout="approval", on_timeout="timed-out",
          guidance=approval_needed(lambda v: (
              f"make {say.new_certificate(v)} the active certificate at {say.window_text(v)}")),
          buttons=APPROVAL_BUTTONS, phase="Activate"),
    State("scheduled", WAITING, "Activation scheduled for the maintenance window", timeout="window",
          on_timeout="window-started",
          guidance=lambda v: (
              f"Approved. I activate {say.new_certificate(v)} at {say.window_text(v)}; be ready then to import the "
              f"federation metadata into {say.trust_text(v, 'import_place')}."),
          buttons=(CANCEL,), phase="Activate"),
    State("activating", RUNNING, "Activating the new certificate in Entra", run=steps.activate_certificate,
          phase="Activate"),
    State("verifying", RUNNING, "Verifying in Graph and the federation metadata", run=steps.verify_activation,
          phase="Verify"),
    State("verification-failed", OPERATOR, "Verification failed: verify again or roll back",
          guidance=lambda v: (
              " ".join(v.data.get("verification_problems") or [v.last_detail]) + " Verify again in a few minutes "
              "(Entra can take a while to publish), or Roll back."),
          buttons=(Button("Verify again", "verify"), ROLL_BACK), phase="Verify"),
    State("awaiting-sign-in-test", OPERATOR, "Waiting for a test sign-in to {relying_party}",
          guidance=lambda v: (
              f"Entra now signs with {say.new_certificate(v)}. Import the federation metadata file above into "
              f"{say.trust_text(v, 'import_place')} now, then test an SSO sign-in to {say.relying_party(v.plan)} in "
              f"a private window. Sign-in works finishes; Roll back re-activates {v.current_thumbprint} (with an "
              "approval)."),
          buttons=(Button("Sign-in works", "signed-in", "positive"), ROLL_BACK), phase="Verify"),
    State("awaiting-rollback-approval", APPROVAL, "Waiting for approval to roll back",
          stage="activate", timeout="approval", on_timeout="timed-out",
          guidance=approval_needed(lambda v: f"re-activate the previous certificate {v.current_thumbprint}"),
          buttons=(APPROVE, REJECT), phase="Verify"),   # no Cancel: the new certificate is active
    State("rolling-back", RUNNING, "Re-activating the previous certificate", run=steps.roll_back, phase="Verify"),
], [
    *first_approval("awaiting-create-approval", approved="creating"),
    ("creating", "created", "awaiting-window"),
    ("creating", "failed", "failed"),
    ("awaiting-window", "window-chosen", "awaiting-activate-approval"),
    ("awaiting-window", "cancelled", "cancelled"),
    ("awaiting-activate-approval", "approved", "activating"),
    ("awaiting-activate-approval", "approved-before-window", "scheduled"),
    ("awaiting-activate-approval", "window-passed", "awaiting-window"),
    ("awaiting-activate-approval", "rejected", "awaiting-window"),
    ("awaiting-activate-approval", "cancelled", "cancelled"),
    ("awaiting-activate-approval", "timed-out", "expired"),
    ("scheduled", "window-started", "activating"),
    ("scheduled", "window-passed", "awaiting-window"),   # the sweeper was down through the window
    ("scheduled", "cancelled", "cancelled"),
    ("activating", "activated", "verifying"),
    ("activating", "refused", "failed"),          # a precondition failed: nothing was sent
    ("activating", "failed", "verification-failed"),
    ("verifying", "verified", "awaiting-sign-in-test"),
    ("verifying", "simulated", "done"),           # report-only: nothing was activated
    ("verifying", "unverified", "verification-failed"),
    ("verifying", "failed", "verification-failed"),
    ("verification-failed", "verify-again", "verifying"),
    ("verification-failed", "rollback-requested", "awaiting-rollback-approval"),
    ("awaiting-sign-in-test", "sign-in-confirmed", "done"),
    ("awaiting-sign-in-test", "rollback-requested", "awaiting-rollback-approval"),
    ("awaiting-rollback-approval", "approved", "rolling-back"),
    ("awaiting-rollback-approval", "rejected", "awaiting-sign-in-test"),
    ("awaiting-rollback-approval", "timed-out", "awaiting-sign-in-test"),
    # A roll back asked for after a failed verification goes back there, not to "Sign-in works".
    ("awaiting-rollback-approval", "rejected-unverified", "verification-failed"),
    ("awaiting-rollback-approval", "timed-out-unverified", "verification-failed"),
    ("rolling-back", "rolled-back", "rolled-back"),
    ("rolling-back", "refused", "failed"),        # e.g. the previous certificate expired: nothing was sent
    ("rolling-back", "failed", "failed"),
], phases=(Phase("Create"), Phase("Window"), Phase("Activate"), Phase("Verify"), Phase(DONE)))

WEBEX_SP = machine("webex-sp", "Webex SP certificate", [
    State("awaiting-upload-approval", APPROVAL, "Waiting for approval to add the Webex certificate to Entra",
          stage="create", timeout="approval", on_timeout="timed-out",
          guidance=approval_needed(lambda v: (
              f"add Webex's new certificate {v.plan['webex']['thumbprint']} to {v.app_name} in Entra (every "
              "existing credential stays); then you activate it in Webex")),
          buttons=APPROVAL_BUTTONS, phase="Add to Entra"),
    State("uploading", RUNNING, "Adding the Webex certificate to Entra", run=steps.upload_webex_certificate,
          phase="Add to Entra"),
    State("verifying-upload", RUNNING, "Verifying the Webex certificate in Entra", run=steps.verify_upload,
          phase="Add to Entra"),
    State("awaiting-webex-activation", OPERATOR, "Waiting for the new certificate to be activated in Webex",
          guidance=say.awaiting_webex,
          buttons=(Button("Activated in Webex", "webex-activated", "positive"), CANCEL),
          phase="Activate in Webex"),
], [
    *first_approval("awaiting-upload-approval", approved="uploading"),
    ("uploading", "uploaded", "verifying-upload"),
    ("uploading", "failed", "failed"),
    ("verifying-upload", "verified", "awaiting-webex-activation"),
    ("verifying-upload", "unverified", "failed"),
    ("verifying-upload", "failed", "failed"),
    ("awaiting-webex-activation", "webex-activated", "done"),
    ("awaiting-webex-activation", "cancelled", "cancelled"),
], phases=(Phase("Add to Entra", applies=lambda v: bool(v.plan.get("needs_upload"))), Phase("Activate in Webex"),
           Phase(DONE)))

ENTRA_CLEANUP = machine("entra-cleanup", "Clean-up of the old Entra certificate", [
    State("awaiting-cleanup-approval", APPROVAL, "Waiting for approval to remove the old certificate",
          stage="create", timeout="approval", on_timeout="timed-out",
          guidance=approval_needed(lambda v: (
              f"remove the expired certificate {v.plan['old']['thumbprint']} from {v.app_name}")),
          buttons=APPROVAL_BUTTONS, phase="Approve"),
    State("cleaning-up", RUNNING, "Removing the old certificate from Entra", run=steps.remove_old_certificate,
          phase="Remove"),
], [
    *first_approval("awaiting-cleanup-approval", approved="cleaning-up"),
    ("cleaning-up", "removed", "done"),
    ("cleaning-up", "failed", "failed"),
], phases=(Phase("Approve"), Phase("Remove"), Phase(DONE)))

MACHINES = {m.kind: m for m in (ENTRA_SIGNING, WEBEX_SP, ENTRA_CLEANUP)}


def machine_of(record: RotationRecord) -> Machine:
    return MACHINES[record.kind]


def state_of(record: RotationRecord) -> State:
    return machine_of(record).state(record.state)


def step_of(record: RotationRecord) -> str:
    """What people are told the rotation is at: its step, named for its app."""
    return state_of(record).step_for(record.plan)


def requester_of(record: RotationRecord) -> str:
    """Who asked for what the current approval decides (the four-eyes rule): a roll back's own requester."""
    if record.state == "awaiting-rollback-approval":
        return record.data.get("rollback_requested_by") or record.requested_by
    return record.requested_by


_BACK_TO_FAILED_VERIFICATION = {"rejected": "rejected-unverified", "timed-out": "timed-out-unverified"}


def declared_event(record: RotationRecord, event: str) -> str:
    """The machine's name for ``event``: a roll back not approved returns to where it was asked from."""
    if record.state == "awaiting-rollback-approval" and record.data.get("rollback_from") == "verification-failed":
        return _BACK_TO_FAILED_VERIFICATION.get(event, event)
    return event


