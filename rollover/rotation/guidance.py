"""What each rotation step tells the people in the space: the guidance sentence of its card.

Each state of ``rollover.rotation.machine`` names its guidance function here; the card shows the sentence
above the step's facts and buttons. Values from people, Graph or documents arrive already escaped.
"""

from __future__ import annotations

from datetime import datetime

from rollover.rotation.view import RotationView, moment_utc, window_moment

NOT_YET = "chosen after the new certificate exists"


def approval_needed(what: str):
    """The guidance of an approval state: what approving does, who decides, and by when."""
    def guidance(view: RotationView) -> str:
        return _approval_needed(view, what(view) if callable(what) else what)
    return guidance


def _approval_needed(view: RotationView, what: str) -> str:
    needed = view.required_approvals - len(view.approvals)
    deadline = f", by {moment_utc(view.deadline)} UTC" if view.deadline else ""
    return (f"Approve to {what}. Nothing changes before that: {needed} more approval"
            f"{'s' if needed != 1 else ''} needed from {view.approvers}{deadline}.")


def new_certificate(view: RotationView) -> str:
    return view.new_thumbprint or "the new certificate"


def window_text(view: RotationView) -> str:
    start = view.data.get("window_start")
    return window_moment(datetime.fromisoformat(start), view.time_zone) if start else NOT_YET


def trust_text(view: RotationView, key: str) -> str:
    return view.plan.get("trust", {}).get(key, "Control Hub or Site Administration")


def relying_party(plan: dict) -> str:
    """Who trusts Entra's signing certificate: Webex, or the other application a non-Webex app is (plans stored
    before issue 10 were all Webex's)."""
    return plan.get("trust", {}).get("relying_party", "Webex")


def one_idp_certificate(plan: dict) -> str:
    """Webex uses the first certificate of the imported metadata (Cisco); another application may too
    (Microsoft Learn: "If the application can only handle one certificate at a time ...")."""
    party = relying_party(plan)
    return "Webex trusts one IdP certificate" if party == "Webex" else f"{party} may trust only one IdP certificate"


def missed_window(view: RotationView) -> str:
    """Why the rotation is back at choosing a window, when the last one had passed."""
    missed = view.data.get("missed_window")
    if not missed:
        return ""
    return (f"The maintenance window of {window_moment(datetime.fromisoformat(missed), view.time_zone)} had passed, "
            "so nothing was activated. ")


def left_inactive(view: RotationView) -> str:
    if view.new_thumbprint and view.data.get("active_thumbprint") != view.new_thumbprint:
        return f" The new certificate {view.new_thumbprint} stays in Entra, inactive: it signs nothing."
    return ""


def done(view: RotationView) -> str:
    if view.data.get("simulated"):
        return ("Finished in report-only mode: the Graph writes described above were not sent; the audit log "
                "lists what was.")
    if view.kind == "entra-signing":
        old = view.plan.get("current")
        cleanup = (f" The old certificate {old['thumbprint']} stays, inactive, until {day_of(old['not_after'])}; "
                   "after it expired, Clean up removes it (with an approval).") if old else ""
        return f"Done: {new_certificate(view)} signs every sign-in and {relying_party(view.plan)} trusts it.{cleanup}"
    if view.kind == "webex-sp":
        entra = " and Entra knows it" if view.plan.get("needs_upload") else ""
        return f"Done: Webex uses its new certificate{entra}."
    return f"Done: the expired certificate {view.plan['old']['thumbprint']} was removed; nothing else changed."


def failed(view: RotationView) -> str:
    if view.data.get("rollback_refused"):
        return (f"Roll back refused: {view.last_detail} Nothing was changed: Entra still signs with "
                f"{new_certificate(view)}. "
                f"Import its federation metadata into {trust_text(view, 'import_place')} and test a sign-in. If "
                f"sign-ins fail, {manual_switch(view, 'another valid certificate')} {start_again(view)}")
    previous = view.plan.get("current")
    emergency = ""
    if view.kind == "entra-signing" and previous:
        emergency = (f" If sign-ins to {relying_party(view.plan)} fail, "
                     f"{manual_switch(view, 'the previous certificate ' + previous['thumbprint'])}")
    return (f"Failed: {view.last_detail} Check the app in the Entra admin center before going on."
            f"{left_inactive(view)} {start_again(view)}{emergency}")


def manual_switch(view: RotationView, certificate: str) -> str:
    """The way to switch the signing certificate by hand when the bot cannot (an emergency)."""
    return (f"in the Entra admin center › Enterprise applications › {view.app_name} › Single sign-on › SAML "
            f"Certificates make {certificate} active, then import the app's federation metadata into "
            f"{trust_text(view, 'import_place')}.")


def start_again(view: RotationView) -> str:
    # No code span around the name: on the card it is Markdown-escaped, and escapes show inside one.
    if view.kind == "entra-cleanup":
        return f"“cleanup {view.plan['follows']}” asks for the clean-up again."
    command = "rotate webex-sp" if view.kind == "webex-sp" else "rotate"
    return f"“{command} {view.app_name}” starts again."


def awaiting_webex(view: RotationView) -> str:
    place = trust_text(view, "activation_place")
    if view.plan.get("needs_upload"):
        ready = "Entra now knows Webex's new certificate."
    else:
        ready = f"Entra does not need Webex's new certificate: {view.plan.get('answer', '')}"
    note = f" {view.plan['encryption_note']}" if view.plan.get("encryption_note") else ""
    return f"{ready} Now activate the new certificate in {place}, then press Activated in Webex.{note}"



def day_of(iso: str | None) -> str:
    return iso[:10] if iso else "?"
