"""The declared state machines and their storage: consistent tables, compare-and-set, leases, append-only audit."""

import ast
import inspect
import sqlite3
import textwrap

import pytest

from rollover.rotation import steps as rotation_steps
from rollover.rotation.machine import APPROVAL, MACHINES, RUNNING, TERMINAL, WAITING
from rollover.settings import ConfigError, load_config
from rollover.storage import RotationChange, Storage

INITIAL_STATES = {"entra-signing": ["awaiting-create-approval"],
                  "webex-sp": ["awaiting-upload-approval", "awaiting-webex-activation"],
                  "entra-cleanup": ["awaiting-cleanup-approval"]}


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_every_state_is_reachable_and_every_open_state_leads_somewhere(kind):
    machine = MACHINES[kind]
    reached, frontier = set(INITIAL_STATES[kind]), list(INITIAL_STATES[kind])
    while frontier:
        source = frontier.pop()
        for (state, _event), target in machine.transitions.items():
            if state == source and target not in reached:
                reached.add(target)
                frontier.append(target)
    used_terminals = {s for s in reached if machine.state(s).kind == TERMINAL}
    assert reached == {name for name, s in machine.states.items() if s.kind != TERMINAL} | used_terminals
    for name in reached:
        state = machine.state(name)
        outgoing = [event for (source, event) in machine.transitions if source == name]
        assert (state.kind == TERMINAL) == (not outgoing), name


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_running_states_have_a_step_and_a_way_out_on_failure_and_approvals_expire(kind):
    machine = MACHINES[kind]
    for state in machine.states.values():
        if state.kind == RUNNING:
            assert callable(state.run) and machine.allows(state.name, "failed"), state.name
        if state.kind == APPROVAL:
            assert state.stage in ("create", "activate") and state.timeout == "approval", state.name
            assert machine.allows(state.name, "approved") and machine.allows(state.name, "rejected")
        if state.on_timeout:
            assert machine.allows(state.name, state.on_timeout), state.name
        if state.kind == WAITING:
            assert state.on_timeout, state.name


def step_events(function, bound: dict[str, str] | None = None) -> set[str]:
    """The events a step function can return: every ``Outcome("...")`` in it and in the rotation_steps
    helpers it calls, an event passed down to a helper resolved at the call site."""
    bound = bound or {}
    events = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "Outcome" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant):
                events.add(first.value)
            elif isinstance(first, ast.Name) and first.id in bound:
                events.add(bound[first.id])
        helper = getattr(rotation_steps, node.func.id, None)
        if inspect.isfunction(helper) and helper.__module__ == rotation_steps.__name__ and helper is not function:
            names = list(inspect.signature(helper).parameters)
            passed = {names[i]: arg.value for i, arg in enumerate(node.args) if isinstance(arg, ast.Constant)}
            passed.update({k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)})
            events |= step_events(helper, {name: value for name, value in passed.items() if isinstance(value, str)})
    return events


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_every_outcome_of_a_step_is_a_declared_transition(kind):
    machine = MACHINES[kind]
    for state in machine.states.values():
        if state.kind == RUNNING:
            events = step_events(state.run) | {"failed"}          # "failed": what _run_step makes of an error
            assert len(events) > 1, state.name
            undeclared = sorted(event for event in events if not machine.allows(state.name, event))
            assert undeclared == [], f"{state.name} can return {undeclared}, which the machine does not accept"


def new_rotation(storage: Storage, app_key: str = "sp-1", marker: str = "rollover-1") -> int | None:
    return storage.rotations.create(kind="entra-signing", app_key=app_key, app_name="App", room_id="room",
                                   requested_by="alice@example.com", marker=marker,
                                   state="awaiting-create-approval", plan={}, data={}, deadline=None,
                                   event_key="messages:1", now=100.0)


def change(state: str, *, finished: bool = False, state_changed: bool = True) -> RotationChange:
    return RotationChange(state=state, data={}, deadline=None, finished=finished, event_key="e", now=200.0,
                          state_changed=state_changed)


@pytest.fixture
def storage(tmp_path) -> Storage:
    storage = Storage(tmp_path / "rotations.sqlite3")
    storage.migrate()
    return storage


def test_the_database_keeps_one_open_rotation_per_app(storage):
    first = new_rotation(storage)
    assert new_rotation(storage, marker="rollover-2") is None
    assert new_rotation(storage, app_key="sp-2", marker="rollover-3") is not None
    assert storage.rotations.change(first, 1, change("cancelled", finished=True), lease_owner="a", lease_until=0,
                                   now=0)
    assert new_rotation(storage, marker="rollover-4") is not None        # the first one is finished


def test_a_change_applies_once_per_version_and_respects_a_live_lease(storage):
    rotation_id = new_rotation(storage)
    assert storage.rotations.change(rotation_id, 1, change("creating"), lease_owner="a", lease_until=50, now=10)
    assert not storage.rotations.change(rotation_id, 1, change("cancelled"), lease_owner="b", lease_until=0, now=10)
    assert not storage.rotations.change(rotation_id, 2, change("failed"), lease_owner="b", lease_until=0, now=10)
    assert storage.rotations.claim(rotation_id, "b", 100, now=20) is None  # a still works on it
    claimed = storage.rotations.claim(rotation_id, "b", 100, now=60)       # a's lease ended: a crashed
    assert claimed.state == "creating" and claimed.version == 2 and claimed.state_version == 2


def test_approvals_count_different_people_within_one_approval_request(storage):
    rotation_id = new_rotation(storage)
    pending, approved = change("awaiting-create-approval", state_changed=False), change("creating")
    options = dict(required=2, approved=approved, pending=pending, lease_owner="w", lease_until=0, now=0)
    assert storage.rotations.approve(rotation_id, 1, "bob@example.com", **options) == 1
    assert storage.rotations.approve(rotation_id, 2, "bob@example.com", **options) is None   # the same person
    assert storage.rotations.get(rotation_id).version == 2                                     # rolled back
    assert storage.rotations.approve(rotation_id, 1, "carol@example.com", **options) is None  # an old card
    assert storage.rotations.approve(rotation_id, 2, "carol@example.com", **options) == 2
    record = storage.rotations.get(rotation_id)
    assert record.state == "creating" and record.version == 4


def test_the_audit_log_is_append_only(storage):
    storage.audit.append(at=1.0, room_id="room", rotation_id=None, app="App", actor="alice@example.com",
                         action="requested", detail="Requested.", before=None, after=None, requests=[])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        storage.db.execute("UPDATE audit_log SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        storage.db.execute("DELETE FROM audit_log")
    assert [entry.actor for entry in storage.audit.entries()] == ["alice@example.com"]


def test_approver_groups_must_be_entra_object_ids():
    with pytest.raises(ConfigError, match="ROLLOVER_APPROVER_GROUP"):
        load_config({"ROLLOVER_APPROVER_GROUP": "rollover approvers"})
    assert load_config({"ROLLOVER_REQUIRED_APPROVALS": "2"}).required_approvals == 2


def test_every_declared_button_is_a_card_action_with_a_handler():
    from handlers.actions import ROTATION_BUTTONS
    from handlers.registry import build_registry
    declared = {button.name for m in MACHINES.values() for state in m.states.values() for button in state.buttons}
    assert declared == set(ROTATION_BUTTONS)
    actions = build_registry().actions
    assert [name for name in declared if ROTATION_BUTTONS[name] not in actions] == []


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_every_state_people_wait_in_says_what_to_do(kind):
    """Approval and operator states lead their card with guidance and offer a way on (a button)."""
    for state in MACHINES[kind].states.values():
        if state.kind in (APPROVAL, "operator"):
            assert state.guidance is not None and state.buttons, state.name


def _view_at(kind: str, state: str, **plan):
    from datetime import datetime, timezone

    from rollover.rotation.view import RotationView
    return RotationView(id=1, kind=kind, kind_label="", app_name="App", state=state, state_kind="", step="",
                        version=1, requested_by="", plan=plan, data={}, approvals=[], required_approvals=1,
                        approvers="", deadline=None, report_only=False, now=datetime.now(timezone.utc))


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_every_open_state_shows_where_the_rotation_is_and_done_ticks_every_step(kind):
    machine = MACHINES[kind]
    for name, state in machine.states.items():
        progress = machine.progress(_view_at(kind, name, needs_upload=True))
        if state.kind == TERMINAL and name != "done":
            assert progress == [], name              # stopped short of Done: no steps to tick
            continue
        marks = [mark for _number, _phase, mark in progress]
        assert [number for number, _phase, _mark in progress] == list(range(1, len(progress) + 1))
        assert progress[-1][1] == "Done"
        if name == "done":
            assert set(marks) == {"done"}
        else:
            current = marks.index("current")
            assert set(marks[:current]) <= {"done"} and set(marks[current + 1:]) <= {"next"}, name


def test_the_step_indicator_reads_as_the_rotation_goes():
    from cards.rotations import step_indicator
    assert step_indicator(_view_at("entra-signing", "awaiting-activate-approval"), current="[{}]") == \
        "1 Create ✓ · 2 Window ✓ · [3 Activate] · 4 Verify · 5 Done"
    assert step_indicator(_view_at("entra-signing", "awaiting-sign-in-test")) == \
        "1 Create ✓ · 2 Window ✓ · 3 Activate ✓ · 4 Verify · 5 Done"
    # A Webex certificate Entra does not need is never added there: that step is not shown at all.
    assert step_indicator(_view_at("webex-sp", "awaiting-webex-activation", needs_upload=False)) == \
        "1 Activate in Webex · 2 Done"
    assert step_indicator(_view_at("webex-sp", "done", needs_upload=True)) == \
        "1 Add to Entra ✓ · 2 Activate in Webex ✓ · 3 Done ✓"


def test_a_state_outside_the_declared_steps_is_refused_when_the_machine_is_declared():
    from rollover.rotation.machine import DONE, Phase, State, machine
    with pytest.raises(ValueError, match="belongs to no phase"):
        machine("x", "X", [State("waiting", APPROVAL, "Waiting", phase="Nowhere")], [("waiting", "ok", "done")],
                phases=(Phase("Start"), Phase(DONE)))


PLANS = {"old (no trust)": {}, "Webex": {"trust": {"relying_party": "Webex"}},
         "Salesforce": {"trust": {"relying_party": "Salesforce"}}}


@pytest.mark.parametrize("kind", sorted(MACHINES))
@pytest.mark.parametrize("plan", PLANS.values(), ids=list(PLANS))
def test_every_step_name_fills_its_template_for_every_plan(kind, plan):
    for state in MACHINES[kind].states.values():
        step = state.step_for(plan)
        assert step and "{" not in step and "}" not in step, (state.name, step)


def test_an_entra_signing_rotation_names_its_relying_party_and_only_the_plan_decides():
    """Entra signs for any SAML app: its steps never say Webex for another app, and still do for Webex's."""
    states = MACHINES["entra-signing"].states.values()
    assert [s.step_for(PLANS["Salesforce"]) for s in states if "Webex" in s.step_for(PLANS["Salesforce"])] == []
    sign_in = MACHINES["entra-signing"].state("awaiting-sign-in-test")
    assert sign_in.step_for(PLANS["Salesforce"]) == "Waiting for a test sign-in to Salesforce"
    assert sign_in.step_for(PLANS["Webex"]) == sign_in.step_for({}) == "Waiting for a test sign-in to Webex"
