"""Who may approve a rotation step: configured e-mail addresses, or members of an Entra group.

Two stages have their own approver settings: ``create`` (Entra changes that add or remove
certificates: create the signing certificate, add Webex's certificate, clean up) and ``activate``
(switching which certificate signs sign-ins: activate, roll back). A stage that sets its own list
or group uses only those; a stage that sets neither uses the general list and group. Group
membership is checked through Graph at the moment of the click, never cached. Whoever asked for a
step cannot approve it unless ROLLOVER_ALLOW_SELF_APPROVAL.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollover.errors import Retryable, UserError
from rollover.services import Services

STAGES = ("create", "activate")


@dataclass(frozen=True)
class Approvers:
    emails: tuple[str, ...]
    group_id: str

    @property
    def configured(self) -> bool:
        return bool(self.emails or self.group_id)

    def describe(self) -> str:
        parts = list(self.emails)
        if self.group_id:
            parts.append(f"members of Entra group {self.group_id}")
        return ", ".join(parts) or "nobody (no approvers configured)"


def approvers_for(config, stage: str) -> Approvers:
    own = Approvers(tuple(getattr(config, f"{stage}_approvers")), getattr(config, f"{stage}_approver_group"))
    # Inheriting the general group next to a stage's own list would let all of it decide the stage.
    return own if own.configured else Approvers(tuple(config.approvers), config.approver_group)


def require_approvers(config, stages: tuple[str, ...] = STAGES) -> None:
    """Fail closed before a rotation starts: every stage it needs must have approvers."""
    missing = [stage for stage in stages if not approvers_for(config, stage).configured]
    if missing:
        raise UserError(f"Nobody may approve the {' and '.join(missing)} step{'s' if len(missing) > 1 else ''}, so "
                        "I cannot start a rotation. An operator sets ROLLOVER_APPROVERS (e-mail addresses) or "
                        "ROLLOVER_APPROVER_GROUP (an Entra group id), or the per-stage ROLLOVER_CREATE_APPROVERS / "
                        "ROLLOVER_ACTIVATE_APPROVERS.")


def approval_refusal(services: Services, *, stage: str, email: str, requested_by: str,
                     already_approved: list[str]) -> str | None:
    """Why ``email`` may not approve this step now; None when they may."""
    email = (email or "").strip().lower()
    config = services.config
    if email == requested_by.lower() and not config.allow_self_approval:
        return "You asked for this step, so someone else has to approve it (four-eyes rule)."
    if email in already_approved:
        return "You already approved this step; it needs an approval from someone else."
    return may_decide(services, stage, email)


def may_decide(services: Services, stage: str, email: str) -> str | None:
    """None when ``email`` is an approver of ``stage`` (checked now, through Graph for the group)."""
    approvers = approvers_for(services.config, stage)
    if email in approvers.emails:
        return None
    if approvers.group_id:
        if services.entra is None:
            return "Approvals by Entra group need Microsoft Graph, which is not configured."
        try:
            if services.entra.is_member_of_group(email, approvers.group_id):
                return None
        except (UserError, Retryable) as error:       # Graph's sentences carry no secret
            return f"I could not check your membership of the approver group in Entra ({error})."
    return f"Only the {stage} approvers may decide this step ({approvers.describe()})."
