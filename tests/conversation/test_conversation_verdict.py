"""The upload-or-activate answer in a space, at once (issue 10): a dropped Webex document is answered from the
Entra app serving it, `explain` covers the tenant's Webex apps, and a space without Graph gets a definite answer
from the app's JSON."""

import json
from datetime import datetime, timedelta, timezone

from tests.support.certfactory import der_of, make_cert, make_idp_metadata, make_sp_metadata
from tests.support.rotation_helpers import rotation_overrides

NOW = datetime.now(timezone.utc)
ORG = "7f9e2c4a-0000-4000-8000-0000000000e1"          # the demo tenant's Cisco Webex app serves this org
CONTROL_HUB = f"https://idbroker.webex.com/{ORG}"
ACS = f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"
OTHER_ORG = "11111111-0000-4000-8000-0000000000e2"
# The upload answer's words (sentences and card titles): none may appear where no Webex certificate is.
VERDICT_TITLES = ("No upload to Azure", "Upload first", "Not known without", "Upload to Entra first",
                  "Upload the new Webex certificate to Azure?", "Do I need to upload")


def webex_certificates(key_index=5):
    old, _ = make_cert("idbroker.webex.com 2024", NOW - timedelta(days=330), NOW + timedelta(days=30), key_index=0)
    new, _ = make_cert("idbroker.webex.com 2025", NOW - timedelta(days=10), NOW + timedelta(days=400),
                       key_index=key_index)
    return old, new


def control_hub_metadata(org=ORG, certificates=None):
    old, new = certificates or webex_certificates()
    return make_sp_metadata(f"https://idbroker.webex.com/{org}", [old, new],
                            acs=[f"https://idbroker.webex.com/idb/Consumer/metaAlias/{org}/sp"])


def drop(chat, name, data, content_type="application/xml"):
    content = chat.webex.add_file(name, data, content_type)
    return chat.say(chat.alice, "", files=[content])


def text_of(reply) -> str:
    from cards.text import summarize_card
    return f"{reply.body}\n{summarize_card(reply.card) if reply.card else ''}"


def test_a_dropped_webex_document_is_answered_from_the_entra_app_at_once(graph_chat):
    [reply] = drop(graph_chat, "idb-meta-SP.xml", control_hub_metadata())
    text = text_of(reply)
    assert "No upload to Azure: Cisco Webex neither requires verification" in text
    assert "Not known" not in text and "could not read the Entra app" not in text


def test_an_app_added_after_the_inventory_was_read_is_found_by_reading_graph_again(make_chat, local_graph):
    chat = make_chat(graph=local_graph)
    quiet = local_graph.add_saml_app("Salesforce", identifier_uris=["https://contoso.my.salesforce.com"])
    local_graph.add_signing_certificate(quiet["id"], not_before=NOW - timedelta(days=10),
                                        not_after=NOW + timedelta(days=900), active=True)
    chat.say(chat.alice, "apps")                           # the inventory is stored now, without a Webex app
    sp = local_graph.add_saml_app("Webex EU", identifier_uris=[f"https://idbroker.webex.com/{OTHER_ORG}"],
                                  requires_signed_requests=True, notification_emails=["it@contoso.example"])
    local_graph.add_signing_certificate(sp["id"], not_before=NOW - timedelta(days=10),
                                        not_after=NOW + timedelta(days=900), active=True)
    [reply] = drop(chat, "idb-meta-eu.xml", control_hub_metadata(OTHER_ORG))
    text = text_of(reply)
    assert "Upload first" in text and "Webex EU > Single sign-on > SAML Certificates > Verification" in text


def test_explain_with_graph_covers_the_tenants_webex_apps(graph_chat):
    [reply] = graph_chat.say(graph_chat.alice, "explain")
    text = text_of(reply)
    assert "Cisco Webex: Entra signing certificate expiring" in text
    assert "Without Graph" not in text
    assert not any(title in text for title in VERDICT_TITLES)      # no Webex certificate: no Webex question


def test_a_webex_apps_critical_certificate_leads_explain_and_the_dropped_document(make_chat, local_graph):
    chat = make_chat(graph=local_graph)
    sp = local_graph.add_saml_app("Cisco Webex", identifier_uris=[CONTROL_HUB], requires_signed_requests=False,
                                  notification_emails=["it@contoso.example"])
    local_graph.add_signing_certificate(sp["id"], not_before=NOW - timedelta(days=1000),
                                        not_after=NOW + timedelta(days=5, hours=1), active=True)
    explain = text_of(chat.say(chat.alice, "explain")[0])
    assert "Entra's signing certificate" in explain and "for Cisco Webex expires in 5 days" in explain
    assert "No outage risk" not in explain and "Without Graph" not in explain
    [reply] = drop(chat, "idb-meta-SP.xml", control_hub_metadata())
    assert "for Cisco Webex expires in 5 days" in text_of(reply) and "No upload to Azure" in text_of(reply)


def app_files(certificates):
    """The Webex app as `az ad app show` / `az ad sp show` print it: verification required, the current
    Webex certificate uploaded, token encryption with it (on the application object)."""
    old, _new = certificates
    import base64
    import hashlib
    cki = base64.b64encode(hashlib.sha1(der_of(old)).digest()).decode()
    key = {"customKeyIdentifier": cki, "displayName": "CN=idbroker.webex.com", "key": None,
           "startDateTime": "2024-07-01T00:00:00Z", "endDateTime": "2030-07-01T00:00:00Z",
           "type": "AsymmetricX509Cert"}
    application = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
                   "id": "9a8b7c6d-0000-4000-8000-000000000001", "appId": "5c1e7f3a-0000-4000-8000-000000000001",
                   "displayName": "Cisco Webex", "identifierUris": [CONTROL_HUB],
                   "keyCredentials": [{**key, "keyId": "v1", "usage": "Verify"},
                                      {**key, "keyId": "e1", "usage": "Encrypt"}],
                   "passwordCredentials": [], "tokenEncryptionKeyId": "e1",
                   "requestSignatureVerification": {"isSignedRequestRequired": True, "allowedWeakAlgorithms": None}}
    entra, _ = make_cert("Microsoft Azure Federated SSO Certificate", NOW - timedelta(days=100),
                         NOW + timedelta(days=10), key_index=2)
    entra_cki = base64.b64encode(hashlib.sha1(der_of(entra)).digest()).decode()
    entra_key = {**key, "customKeyIdentifier": entra_cki,
                 "endDateTime": (NOW + timedelta(days=10, hours=1)).isoformat()}
    service_principal = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
        "id": "3f2e1d0c-0000-4000-8000-000000000002", "appId": application["appId"], "displayName": "Cisco Webex",
        "servicePrincipalNames": [application["appId"], CONTROL_HUB], "replyUrls": [ACS],
        "preferredTokenSigningKeyThumbprint": hashlib.sha1(der_of(entra)).hexdigest().upper(),
        "tokenEncryptionKeyId": None, "notificationEmailAddresses": [],
        "keyCredentials": [{**entra_key, "keyId": "s1", "usage": "Sign", "type": "X509CertAndPassword"},
                           {**entra_key, "keyId": "s2", "usage": "Verify"}]}
    return json.dumps(application).encode(), json.dumps(service_principal).encode()


def test_an_app_json_dropped_into_a_space_without_graph_is_read_as_the_apps_settings(chat):
    certificates = webex_certificates()
    before = text_of(drop(chat, "idb-meta-SP.xml", control_hub_metadata(certificates=certificates))[0])
    assert "Not known" in before and "az ad app show" in before
    application, service_principal = app_files(certificates)
    [reply] = drop(chat, "cisco-webex-app.json", application, "application/json")
    text = text_of(reply)
    assert "Read cisco-webex-app.json: the application object of Cisco Webex" in text
    assert "Upload first" in text and "Verification certificates" in text and "Token encryption" in text
    [reply] = drop(chat, "cisco-webex-sp.json", service_principal, "application/json")
    assert "for Cisco Webex expires in 10 days" in text_of(reply)            # its signing certificate now counts
    status = text_of(chat.say(chat.alice, "status")[0])
    assert "Entra app Cisco Webex (service principal, cisco-webex-sp.json)" in status


def test_a_json_file_that_is_not_an_app_is_refused_with_its_reason(chat):
    [reply] = drop(chat, "notes.json", b'{"hello": "world"}', "application/json")
    assert "neither an application nor a service principal" in reply.body and reply.card is None
    assert chat.services.storage.tracking.sources(room_id=chat.room.id) == []


def test_another_service_providers_metadata_is_not_taken_for_webex(chat):
    expired, _ = make_cert("MicrosoftOnline", NOW - timedelta(days=800), NOW - timedelta(days=3), key_index=4)
    [reply] = drop(chat, "microsoft-sp.xml", make_sp_metadata("urn:federation:MicrosoftOnline", [expired],
                                                              acs=["https://login.microsoftonline.com/login.srf"]))
    text = text_of(reply)
    assert "service provider urn:federation:MicrosoftOnline" in text
    assert "Webex SP certificate" not in text and "Cisco renews" not in text
    assert not any(title in text for title in VERDICT_TITLES)


def test_entra_federation_metadata_gets_no_webex_question(graph_chat):
    entra, _ = make_cert("Microsoft Azure Federated SSO Certificate", NOW - timedelta(days=100),
                         NOW + timedelta(days=8), key_index=2)
    graph_chat.say(graph_chat.alice, "apps")
    [reply] = drop(graph_chat, "federationmetadata.xml", make_idp_metadata("https://sts.windows.net/t/", [entra]))
    text = text_of(reply)
    assert "Entra's signing certificate" in text and not any(title in text for title in VERDICT_TITLES)


def test_a_non_webex_app_gets_its_own_guidance_and_its_rotation_no_webex_step(make_chat, demo_graph):
    graph_chat = make_chat(graph=demo_graph, **rotation_overrides(demo_graph))
    text = text_of(graph_chat.say(graph_chat.alice, "app Salesforce")[0])
    assert "Not a Webex app" in text and "Salesforce's SAML settings" in text and "Control Hub" not in text
    refused = graph_chat.say(graph_chat.alice, "rotate webex-sp Salesforce")[0].body
    assert "is not one" in refused
    plan = text_of(graph_chat.say(graph_chat.alice, "rotate Salesforce")[0])
    assert "Salesforce's SAML settings" in plan and "Control Hub" not in plan
    assert "Salesforce, in the same window" in plan and "Webex trusts one IdP certificate" not in plan
