"""Entra apps as Graph returns them -> the diagnosis input: token encryption read from the application object
and the service principal, Identifier values from identifierUris and servicePrincipalNames."""

import base64
import hashlib

import pytest

from rollover.integrations.entra_model import _application_info, _sp_info, build_inventory_entry, to_trust_facts

APP_ID = "5c1e7f3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"
IDENTIFIER = "https://idbroker.webex.com/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
ACS = "https://idbroker.webex.com/idb/Consumer/metaAlias/0a1b2c3d-4e5f-6789-abcd-ef0123456789/sp"
WEBEX_OLD = hashlib.sha1(b"webex-old").digest()
ENTRA = hashlib.sha1(b"entra").digest()


def key(key_id, usage, digest=WEBEX_OLD, **extra):
    entry = {"customKeyIdentifier": base64.b64encode(digest).decode() if digest else None, "key": None,
             "displayName": "CN=x", "keyId": key_id, "startDateTime": "2024-07-01T00:00:00Z",
             "endDateTime": "2025-07-01T00:00:00Z", "type": "AsymmetricX509Cert", "usage": usage}
    return {**entry, **extra}


def application(**overrides):
    """`az ad app show` shape: Verify + Encrypt keys for Webex's current certificate, encryption on."""
    body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
            "id": "9a8b7c6d-0000-4000-8000-000000000001", "appId": APP_ID, "displayName": "Cisco Webex",
            "identifierUris": [IDENTIFIER], "keyCredentials": [key("v1", "Verify"), key("e1", "Encrypt")],
            "passwordCredentials": [], "tokenEncryptionKeyId": "e1", "web": {"redirectUris": [ACS]},
            "requestSignatureVerification": {"isSignedRequestRequired": True, "allowedWeakAlgorithms": None}}
    return {**body, **overrides}


def service_principal(**overrides):
    body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
            "id": "3f2e1d0c-0000-4000-8000-000000000002", "appId": APP_ID, "displayName": "Cisco Webex",
            "servicePrincipalNames": [APP_ID, IDENTIFIER], "replyUrls": [ACS], "tokenEncryptionKeyId": None,
            "preferredTokenSigningKeyThumbprint": ENTRA.hex().upper(), "notificationEmailAddresses": ["it@x"],
            "keyCredentials": [key("s1", "Sign", ENTRA, type="X509CertAndPassword"), key("s2", "Verify", ENTRA)]}
    return {**body, **overrides}


def facts(app=None, sp=None):
    return to_trust_facts(build_inventory_entry(_sp_info(sp) if sp else None, _application_info(app) if app else None))


def test_token_encryption_on_the_application_object_is_found_though_the_sp_says_null():
    read = facts(application(), service_principal())
    assert (read.token_encryption, read.token_encryption_thumbprint) == ("on", WEBEX_OLD.hex().upper())
    assert read.requires_signed_requests is True and read.verification_certificate_thumbprints == [
        WEBEX_OLD.hex().upper()]
    assert read.sp_entity_ids == [IDENTIFIER] and read.reply_urls == [ACS]
    assert read.webex_kind == "control-hub"
    assert [c.active for c in read.signing_certificates] == [True]


@pytest.mark.parametrize("app, sp, state", [
    (application(tokenEncryptionKeyId=None), service_principal(), "off"),
    (None, service_principal(tokenEncryptionKeyId="e9", keyCredentials=[key("e9", "Encrypt")]), "on"),
    (application(tokenEncryptionKeyId="gone"), service_principal(), "unidentified"),
    (application(keyCredentials=[key("e1", "Encrypt", digest=b"")]), None, "unidentified"),
    ({k: v for k, v in application().items() if k != "tokenEncryptionKeyId"}, None, "unknown"),
    (None, service_principal(), "unknown"),   # the setting lives on the application object
])
def test_token_encryption_states(app, sp, state):
    assert facts(app, sp).token_encryption == state


def test_service_principal_alone_has_no_verification_setting():
    read = facts(None, service_principal())
    assert read.requires_signed_requests is None and read.sp_entity_ids == [IDENTIFIER]


def test_a_signed_request_flag_that_is_not_a_boolean_is_refused_not_read_as_on():
    import pytest

    from rollover.integrations.entra_model import _application_info
    with pytest.raises(ValueError):
        _application_info({"id": "A", "requestSignatureVerification": {"isSignedRequestRequired": "false"}})
    with pytest.raises(ValueError):
        _application_info({"id": "A", "requestSignatureVerification": "on"})
    assert _application_info({"id": "A", "requestSignatureVerification": None}).signed_requests_required is False


def test_an_app_file_keeps_public_certificates_and_nothing_that_could_be_private():
    import json

    from rollover.integrations.entra_files import read_app_file
    sp = {"appId": "0ab4c0de-0000-4000-8000-00000000a001", "displayName": "Cisco Webex", "id": "S",
          "servicePrincipalType": "Application", "preferredSingleSignOnMode": "saml",
          "keyCredentials": [
              {"keyId": "k1", "usage": "Verify", "type": "AsymmetricX509Cert", "key": "UFVCTElD"},
              {"keyId": "k2", "usage": "sign", "type": "X509CertAndPassword", "key": "UFJJVkFURQ==",
               "secretText": "hunter2"},
              {"keyId": "k3", "type": "AsymmetricX509Cert", "key": "VU5LTk9XTg=="}]}
    body = read_app_file(json.dumps(sp).encode(), "sp.json", 1 << 20).body
    keys = {entry["keyId"]: entry for entry in body["keyCredentials"]}
    assert keys["k1"]["key"] == "UFVCTElD"
    assert keys["k2"]["key"] is None and keys["k3"]["key"] is None
    assert "secretText" not in json.dumps(body) and "hunter2" not in json.dumps(body)


SHORT = b"not-a-thumbprint"   # a customKeyIdentifier that is not 20 bytes: no thumbprint without the key


@pytest.mark.parametrize("keys, preferred, needs", [
    ([key("s1", "Sign", ENTRA), key("v1", "Verify", ENTRA)], ENTRA.hex().upper(), False),
    ([key("s1", "Sign", ENTRA), key("v1", "Verify", ENTRA)], ENTRA.hex(), False),      # compared in upper case
    ([key("s1", "Sign", SHORT), key("v1", "Verify", ENTRA)], ENTRA.hex(), False),      # Sign keys don't count
    ([key("v1", "Verify", SHORT)], None, True),
    ([key("v1", "Verify", ENTRA), key("e1", "Encrypt", SHORT)], ENTRA.hex(), True),
    ([key("v1", "Verify", WEBEX_OLD), key("v2", "Verify", ENTRA)], ENTRA.hex(), False),
    ([key("v1", "Verify", WEBEX_OLD)], ENTRA.hex(), True),                            # preferred unexplained
    ([], None, False),
    ([], ENTRA.hex(), True),
])
def test_a_service_principal_needs_its_keys_read_only_when_its_thumbprints_cannot_be_derived(keys, preferred, needs):
    sp = _sp_info(service_principal(keyCredentials=keys, preferredTokenSigningKeyThumbprint=preferred))
    assert sp.needs_key_fetch is needs


@pytest.mark.parametrize("keys, needs", [
    ([key("v1", "Verify"), key("e1", "Encrypt", SHORT)], False),   # only Verify keys count on the application
    ([key("v1", "Verify"), key("v2", "Verify", SHORT)], True),
    ([], False),
])
def test_an_application_needs_its_keys_read_only_for_a_verify_key_without_a_thumbprint(keys, needs):
    assert _application_info(application(keyCredentials=keys)).needs_key_fetch is needs


def test_identifiers_and_reply_urls_are_each_listed_once_in_order_without_the_app_id():
    app = application(identifierUris=[IDENTIFIER, IDENTIFIER], web={"redirectUris": [ACS, "https://b/acs"]})
    sp = service_principal(servicePrincipalNames=[APP_ID, "", "urn:other", IDENTIFIER], replyUrls=[ACS])
    entry = build_inventory_entry(_sp_info(sp), _application_info(app))
    assert entry.identifier_uris == (IDENTIFIER, "urn:other")
    assert entry.reply_urls == (ACS, "https://b/acs")
    bare = build_inventory_entry(_sp_info(service_principal(servicePrincipalNames=None, replyUrls=None)), None)
    assert (bare.identifier_uris, bare.reply_urls) == ((), ())
