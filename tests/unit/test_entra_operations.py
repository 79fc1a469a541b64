"""entra_operations through the real SDK against the loopback Graph: success, idempotency,
dry runs, refusals before sending, and loud verification failures after a bad write."""
from __future__ import annotations

import datetime as dt

import pytest
import requests

from fakes.graph import LocalGraph, make_self_signed_certificate, pooled_rsa_key
from rollover.integrations.entra_client import (
    EntraClient,
    GraphPermissionError,
    GraphUnavailableError,
    KeyCredentialInfo,
)
from rollover.integrations.entra_operations import (
    EntraOperations,
    OperationRefusedError,
    OperationVerificationError,
    guard_key_credentials,
)

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)



@pytest.fixture
def ops(client):
    return EntraOperations(client, poll_timeout=1.0, poll_interval=0.05)


@pytest.fixture
def webex(graph):
    """A SAML app with an active cert expiring in 20 days, an expired inactive one and a fresh inactive one."""
    sp = graph.add_saml_app("Cisco Webex", bot_is_owner=True)
    active = graph.add_signing_certificate(sp["id"], not_before=NOW - 300 * DAY, not_after=NOW + 20 * DAY, active=True)
    expired = graph.add_signing_certificate(sp["id"], not_before=NOW - 900 * DAY, not_after=NOW - 5 * DAY)
    fresh = graph.add_signing_certificate(sp["id"], not_before=NOW - DAY, not_after=NOW + 700 * DAY)
    future = graph.add_signing_certificate(sp["id"], not_before=NOW + 2 * DAY, not_after=NOW + 700 * DAY)
    graph.clear_requests()
    return {"sp": sp, "active": active, "expired": expired, "fresh": fresh, "future": future}


def _webex_der(days: int = 365) -> bytes:
    der, _key = make_self_signed_certificate("CN=idbroker.webex.com", NOW - DAY, NOW + days * DAY, pooled_rsa_key(3))
    return der


# ---------------------------------------------------------------- create


def test_create_is_inactive_verified_and_idempotent(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    result = ops.create_token_signing_certificate(sp_id, "CN=Webex SSO", NOW + 700 * DAY, now=NOW,
                                                  idempotency_marker="roll-1")
    assert result.changed and result.thumbprint in graph.verify_thumbprints(sp_id)
    assert result.after.active_thumbprint == webex["active"] == result.before.active_thumbprint
    assert result.requests[0].method == "POST" and result.requests[0].body["displayName"] == "CN=Webex SSO [roll-1]"
    writes = len(graph.write_requests())
    again = ops.create_token_signing_certificate(sp_id, "CN=Webex SSO", NOW + 700 * DAY, now=NOW,
                                                 idempotency_marker="roll-1")
    assert not again.changed and again.thumbprint == result.thumbprint and len(graph.write_requests()) == writes


def test_create_dry_run_sends_nothing(graph, ops, webex):
    result = ops.create_token_signing_certificate(webex["sp"]["id"], "CN=Webex SSO", NOW + 700 * DAY, now=NOW,
                                                  dry_run=True)
    assert result.dry_run and not result.changed and graph.write_requests() == []
    assert result.requests[0].url.endswith(f"/servicePrincipals/{webex['sp']['id']}/addTokenSigningCertificate")


def test_create_refuses_bad_input_before_sending(graph, ops, webex):
    for name, end in [("Webex SSO", NOW + 30 * DAY), ("CN=x", NOW + 4 * 365 * DAY), ("CN=x", NOW - DAY)]:
        with pytest.raises(OperationRefusedError):
            ops.create_token_signing_certificate(webex["sp"]["id"], name, end, now=NOW)
    assert graph.write_requests() == []


def test_create_tolerates_eventual_consistency(graph, ops, webex):
    graph.credential_visibility_delay = 0.3
    result = ops.create_token_signing_certificate(webex["sp"]["id"], "CN=Slow", NOW + 300 * DAY, now=NOW)
    assert result.changed
    assert len(graph.requests_matching("GET", r"/servicePrincipals/")) > 2   # it had to poll


def test_create_times_out_loudly_when_the_certificate_never_shows(graph, client, webex):
    graph.credential_visibility_delay = 60
    with pytest.raises(OperationVerificationError, match="did not appear"):
        EntraOperations(client, poll_timeout=0.2, poll_interval=0.05).create_token_signing_certificate(
            webex["sp"]["id"], "CN=Never", NOW + 300 * DAY, now=NOW)


def test_resumed_create_waits_for_the_previous_post_instead_of_posting_again(graph, ops, webex):
    graph.credential_visibility_delay = 0.3
    sp_id = webex["sp"]["id"]
    url = f"{graph.base_url}/servicePrincipals/{sp_id}/addTokenSigningCertificate"
    requests.post(   # the "crashed" first attempt: POST sent, response lost
        url, json={"displayName": "CN=Webex SSO [r2]"}, headers={"Authorization": "Bearer x"}, timeout=5)
    result = ops.create_token_signing_certificate(sp_id, "CN=Webex SSO", NOW + 700 * DAY, now=NOW,
                                                  idempotency_marker="r2", wait_for_previous_attempt=True)
    assert not result.changed and len(graph.requests_matching("POST")) == 1


def test_create_post_is_not_retried_by_the_sdk(graph, ops, webex):
    graph.inject_fault("POST", r"addTokenSigningCertificate$", status=503, retry_after="1")
    with pytest.raises(GraphUnavailableError):
        ops.create_token_signing_certificate(webex["sp"]["id"], "CN=x", NOW + 300 * DAY, now=NOW)
    assert len(graph.requests_matching("POST")) == 1


# ---------------------------------------------------------------- activate


def test_activate_verifies_and_rolls_back(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    result = ops.activate_certificate(sp_id, webex["fresh"].lower(), now=NOW)
    assert result.changed and graph.service_principals[sp_id]["preferredTokenSigningKeyThumbprint"] == webex["fresh"]
    assert result.requests[0].body == {"@odata.type": "#microsoft.graph.servicePrincipal",
                                       "preferredTokenSigningKeyThumbprint": webex["fresh"]}
    writes = len(graph.write_requests())
    assert not ops.activate_certificate(sp_id, webex["fresh"], now=NOW).changed
    assert len(graph.write_requests()) == writes
    back = ops.activate_certificate(sp_id, result.extra["rollback_thumbprint"], now=NOW)
    assert back.changed and back.after.active_thumbprint == webex["active"]


@pytest.mark.parametrize("which, message", [("expired", "expired"), ("future", "not valid before"),
                                            ("unknown", "no signing certificate")])
def test_activate_refuses_unusable_certificates(graph, ops, webex, which, message):
    thumbprint = "AB" * 20 if which == "unknown" else webex[which]
    with pytest.raises(OperationRefusedError, match=message):
        ops.activate_certificate(webex["sp"]["id"], thumbprint, now=NOW)
    assert graph.write_requests() == []


def test_activate_detects_a_write_that_did_not_stick(graph, ops, webex):
    graph.inject_fault("PATCH", r"/servicePrincipals/", behaviour="ignore_write")
    with pytest.raises(OperationVerificationError, match="still reports"):
        ops.activate_certificate(webex["sp"]["id"], webex["fresh"], now=NOW)


def test_activate_dry_run_sends_nothing(graph, ops, webex):
    result = ops.activate_certificate(webex["sp"]["id"], webex["fresh"], now=NOW, dry_run=True)
    assert result.requests[0].method == "PATCH" and graph.write_requests() == []


def test_write_permissions_owned_by_requires_ownership():
    for permissions, owner, allowed in [(["Application.Read.All"], True, False),
                                        (["Application.ReadWrite.OwnedBy"], False, False),
                                        (["Application.ReadWrite.OwnedBy"], True, True)]:
        with LocalGraph(permissions=permissions) as graph, EntraClient(graph.base_url) as entra:
            sp = graph.add_saml_app("App", bot_is_owner=owner)
            graph.add_signing_certificate(sp["id"], not_before=NOW - DAY, not_after=NOW + 9 * DAY, active=True)
            fresh = graph.add_signing_certificate(sp["id"], not_before=NOW - DAY, not_after=NOW + 99 * DAY)
            operations = EntraOperations(entra, poll_timeout=1, poll_interval=0.05)
            if allowed:
                assert operations.activate_certificate(sp["id"], fresh, now=NOW).changed
                continue
            with pytest.raises(GraphPermissionError, match="Application.ReadWrite.OwnedBy with the bot's app "
                                                           "registered as an owner.*or Application.ReadWrite.All"):
                operations.activate_certificate(sp["id"], fresh, now=NOW)


# ---------------------------------------------------------------- verification certificate


def _application(graph, sp):
    return graph._lookup(graph.applications, f"appId='{sp['appId']}'")


def test_add_verification_certificate_keeps_everything_and_is_idempotent(graph, ops, webex):
    application = _application(graph, webex["sp"])
    existing = graph.add_verification_certificate(application["id"], _webex_der(30), "CN=old webex")
    new_der = _webex_der()
    result = ops.add_verification_certificate(application["id"], new_der, "CN=idbroker.webex.com", now=NOW)
    stored = graph.applications[application["id"]]
    assert result.changed and stored["requestSignatureVerification"]["isSignedRequestRequired"] is True
    assert existing["keyId"] in result.after.key_ids and existing["key"] == stored["keyCredentials"][0]["key"]
    body_keys = result.requests[0].body["keyCredentials"]
    assert "key" not in body_keys[0] and body_keys[1]["key"].endswith("bytes DER)")   # shortened for display
    writes = len(graph.write_requests())
    assert not ops.add_verification_certificate(application["id"], new_der, "CN=x", now=NOW).changed
    assert len(graph.write_requests()) == writes


def test_add_verification_certificate_detects_a_silently_dropped_credential(graph, ops, webex):
    application = _application(graph, webex["sp"])
    graph.add_verification_certificate(application["id"], _webex_der(30), "CN=old webex")
    graph.inject_fault("PATCH", r"/applications/", behaviour="drop_existing_key")
    with pytest.raises(OperationVerificationError, match="existing credentials disappeared"):
        ops.add_verification_certificate(application["id"], _webex_der(), "CN=new", now=NOW)


def someone_writes_after_the_first_read(monkeypatch, client, name: str, write) -> None:
    """An administrator changes the object right after ``client.<name>`` first read it (before the PATCH)."""
    read = getattr(client, name)

    def read_then_write(*args, **kwargs):
        result = read(*args, **kwargs)
        monkeypatch.setattr(client, name, read)
        write()
        return result
    monkeypatch.setattr(client, name, read_then_write)


def test_add_verification_certificate_refuses_when_credentials_changed_since_its_read(graph, client, ops, webex,
                                                                                      monkeypatch):
    application = _application(graph, webex["sp"])
    someone_writes_after_the_first_read(monkeypatch, client, "get_application", lambda: (
        graph.add_verification_certificate(application["id"], _webex_der(30), "CN=added by an admin")))
    with pytest.raises(OperationRefusedError, match="changed while"):
        ops.add_verification_certificate(application["id"], _webex_der(), "CN=new", now=NOW)
    stored = graph.applications[application["id"]]["keyCredentials"]
    assert graph.write_requests() == [] and "CN=added by an admin" in [kc["displayName"] for kc in stored]


def test_add_verification_certificate_dry_run_and_expired_refusal(graph, ops, webex):
    application = _application(graph, webex["sp"])
    dry = ops.add_verification_certificate(application["id"], _webex_der(), "CN=new", now=NOW, dry_run=True)
    assert dry.requests[0].method == "PATCH" and graph.write_requests() == []
    expired = make_self_signed_certificate("CN=old", NOW - 90 * DAY, NOW - DAY, pooled_rsa_key(3))[0]
    with pytest.raises(OperationRefusedError, match="expired"):
        ops.add_verification_certificate(application["id"], expired, "CN=old", now=NOW)


# ---------------------------------------------------------------- remove expired


def test_remove_expired_removes_the_pair_and_its_password(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    before = graph.service_principals[sp_id]
    counts = (len(before["keyCredentials"]), len(before["passwordCredentials"]))
    result = ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW)
    after = graph.service_principals[sp_id]
    assert result.changed and webex["expired"] not in graph.verify_thumbprints(sp_id)
    assert (len(after["keyCredentials"]), len(after["passwordCredentials"])) == (counts[0] - 2, counts[1] - 1)
    assert after["preferredTokenSigningKeyThumbprint"] == webex["active"]
    assert webex["active"] in graph.verify_thumbprints(sp_id)   # stored key kept though echoed as null
    writes = len(graph.write_requests())
    assert not ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW).changed
    assert len(graph.write_requests()) == writes


@pytest.mark.parametrize("which, message", [("active", "ACTIVE"), ("fresh", "not expired")])
def test_remove_refuses_active_or_valid_certificates_before_sending(graph, ops, webex, which, message):
    with pytest.raises(OperationRefusedError, match=message):
        ops.remove_expired_signing_certificate(webex["sp"]["id"], webex[which], now=NOW)
    assert graph.write_requests() == []


def test_remove_dry_run_and_lossy_server(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    dry = ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW, dry_run=True)
    assert {"keyCredentials", "passwordCredentials"} <= set(dry.requests[0].body) and graph.write_requests() == []
    graph.inject_fault("PATCH", r"/servicePrincipals/", behaviour="drop_existing_key")
    with pytest.raises(OperationVerificationError, match="disappeared"):
        ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW)


def test_remove_refuses_when_credentials_changed_since_its_read(graph, client, ops, webex, monkeypatch):
    sp_id = webex["sp"]["id"]
    added = []
    someone_writes_after_the_first_read(monkeypatch, client, "get_service_principal", lambda: added.append(
        graph.add_signing_certificate(sp_id, not_before=NOW - DAY, not_after=NOW + 300 * DAY)))
    with pytest.raises(OperationRefusedError, match="changed while"):
        ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW)
    assert graph.write_requests() == [] and added[0] in graph.verify_thumbprints(sp_id)


def test_remove_detects_a_password_credential_the_server_lost(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    graph.inject_fault("PATCH", r"/servicePrincipals/", behaviour="drop_existing_password")
    with pytest.raises(OperationVerificationError, match="password credentials disappeared"):
        ops.remove_expired_signing_certificate(sp_id, webex["expired"], now=NOW)


def test_guard_refuses_a_patch_that_would_drop_the_active_certificate():
    def key(key_id: str) -> KeyCredentialInfo:
        return KeyCredentialInfo(key_id, "AsymmetricX509Cert", "Verify", "CN=x", NOW, NOW + DAY)
    before = (key("active-verify"), key("active-sign"), key("other"))
    with pytest.raises(OperationRefusedError, match="ACTIVE"):
        guard_key_credentials(before, [key("other")], frozenset(), frozenset({"active-verify", "active-sign"}))
    with pytest.raises(OperationRefusedError, match="drop existing credentials"):
        guard_key_credentials(before, [key("active-verify"), key("active-sign")])
    guard_key_credentials(before, [key("active-verify"), key("active-sign")], frozenset({"other"}))


# ---------------------------------------------------------------- notification e-mails


def test_set_notification_emails(graph, ops, webex):
    sp_id = webex["sp"]["id"]
    result = ops.set_notification_emails(sp_id, ["ops@contoso.example", "OPS@contoso.example", "id@contoso.example"])
    assert result.changed and graph.service_principals[sp_id]["notificationEmailAddresses"] == [
        "ops@contoso.example", "id@contoso.example"]
    writes = len(graph.write_requests())
    assert not ops.set_notification_emails(sp_id, ["ops@contoso.example", "id@contoso.example"]).changed
    assert len(graph.write_requests()) == writes
    for bad in (["not-an-address"], [f"u{i}@contoso.example" for i in range(6)], []):
        with pytest.raises(OperationRefusedError):
            ops.set_notification_emails(sp_id, bad)
    assert ops.set_notification_emails(sp_id, ["a@contoso.example"], dry_run=True).requests[0].body[
        "notificationEmailAddresses"] == ["a@contoso.example"]
    assert len(graph.write_requests()) == writes


def test_a_certificate_requested_on_29_february_may_run_the_full_three_years(client, graph):
    from rollover.integrations.entra_operations import EntraOperations
    leap_day = dt.datetime(2028, 2, 29, 12, tzinfo=dt.timezone.utc)
    EntraOperations._check_signing_certificate_end(dt.datetime(2031, 2, 28, tzinfo=dt.timezone.utc), leap_day)
    from rollover.integrations.entra_operations import OperationRefusedError
    with pytest.raises(OperationRefusedError):
        EntraOperations._check_signing_certificate_end(dt.datetime(2031, 3, 1, tzinfo=dt.timezone.utc), leap_day)
