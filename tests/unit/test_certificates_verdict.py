"""The upload-or-activate answer for every Entra configuration (issue 10): one table, configuration ->
answer / upload_to / activate_in / key words of the summary and findings.

Webex's new certificate is "webex_new" (2025-05-01..2026-07-01), its current one "webex_old" (expires
2025-07-01, 30 days after NOW). Entra's side is what the app facts say, never the metadata's ``use``.
"""

import re

import pytest
from cryptography.hazmat.primitives import hashes

from rollover.certificates.diagnosis import EntraAppFacts, EntraSigningCertificate, TrustFacts, diagnose
from rollover.certificates.health import thumbprint
from rollover.certificates.parsing import parse_document
from tests.support.certfactory import der_of, make_cert, make_idp_metadata, make_sp_metadata, utc

NOW = utc(2025, 6, 1)
ORG = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CH_ENTITY = f"https://idbroker.webex.com/{ORG}"
CH_ACS = f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"
SITE_ACS = "https://shrm.webex.com/dispatcher/SAML2AuthService?siteurl=shrm"


@pytest.fixture(scope="module")
def certs():
    made = {
        "webex_old": make_cert("webex-sp-2024", utc(2024, 7, 1), utc(2025, 7, 1), key_index=0),
        "webex_new": make_cert("webex-sp-2025", utc(2025, 5, 1), utc(2026, 7, 1), key_index=1),
        "site_new": make_cert("WebEx Communications Inc. CA", utc(2025, 5, 1), utc(2026, 7, 1), hash=hashes.SHA1(),
                              key_index=1),
        "microsoft_sp": make_cert("MicrosoftOnline", utc(2023, 1, 1), utc(2025, 5, 20), key_index=4),
        "entra_active": make_cert("Microsoft Azure Federated SSO Certificate", utc(2023, 9, 28), utc(2026, 9, 28),
                                  key_index=2),
        "entra_soon": make_cert("Microsoft Azure Federated SSO Certificate", utc(2022, 6, 10), utc(2025, 6, 10),
                                key_index=3),
    }
    return {name: cert for name, (cert, _key) in made.items()}


def sha1(cert):
    return thumbprint(der_of(cert))


def webex_app(certs, entra="entra_active", **overrides):
    """The Webex enterprise app as Graph shows it; by default it neither verifies nor encrypts."""
    cert = certs[entra]
    facts = dict(display_name="Cisco Webex", app_id="5c1e7f3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b",
                 signing_certificates=[EntraSigningCertificate(sha1(cert), cert.not_valid_before_utc,
                                                               cert.not_valid_after_utc, True)],
                 requires_signed_requests=False, notification_emails=["it@example.com"],
                 sp_entity_ids=[CH_ENTITY], reply_urls=[CH_ACS])
    facts.update(overrides)
    return EntraAppFacts(**facts)


def site_app(certs, **overrides):
    return webex_app(certs, **{"display_name": "Webex Meetings", "sp_entity_ids": ["https://shrm.webex.com"],
                               "reply_urls": [SITE_ACS], **overrides})


def control_hub(certs, use="signing"):
    old_new = [certs["webex_old"], certs["webex_new"]]
    shapes = {"signing": dict(signing_certs=old_new), "encryption": dict(encryption_certs=old_new),
              "none": dict(both_use_certs=old_new)}
    return parse_document(make_sp_metadata(CH_ENTITY, acs=[CH_ACS], **shapes[use]), source="idb-meta-SP.xml")


def site_administration(certs, signed_requests=False):
    """The Site Administration export's shape: default SP ID, dispatcher ACS, one signing certificate."""
    data = make_sp_metadata("http://www.webex.com", [certs["webex_old"], certs["site_new"]], acs=[SITE_ACS],
                            authn_requests_signed=signed_requests)
    return parse_document(data, source="shrm-sp.xml")


def verify(certs, *names):
    return [sha1(certs[name]) for name in names]


CASES = {
    # id: (facts builder, answer, upload_to, activate_in, words that must appear, words that must not)
    "control hub, verification off, no token encryption": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(c)]),
        "activate-only", [], "control-hub",
        ["No upload to Azure", "neither requires verification certificates nor encrypts tokens",
         "Control Hub > Organization Settings > Authentication", "verification certificates not required"],
        ["Site Administration >", "Do I need"]),
    "site administration, verification off": (
        lambda c: TrustFacts([site_administration(c)], entra_apps=[site_app(c)]),
        "activate-only", [], "site-administration",
        ["No upload to Azure", "Site SP Certificate Manager", "Webex certificate signed with SHA-1"],
        ["Control Hub >", "AADSTS76021", "RSA-SHA1"]),
    "verification required, new certificate already there": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(
            c, requires_signed_requests=True,
            verification_certificate_thumbprints=verify(c, "webex_old", "webex_new"))]),
        "activate-only", [], "control-hub",
        ["already a verification certificate", "Entra accepts only RSA-SHA256 request signatures"],
        ["Upload first"]),
    "verification required, new certificate absent": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(
            c, requires_signed_requests=True, verification_certificate_thumbprints=verify(c, "webex_old"))]),
        "upload-then-activate", ["verification"], "control-hub",
        ["Upload first: add the new Webex certificate", "> Verification certificates",
         "No certificate matching with provided key identifier", "no token encryption"],
        ["token encryption must switch", "import it in"]),
    "site administration signs its requests, verification required": (
        lambda c: TrustFacts([site_administration(c, signed_requests=True)], entra_apps=[site_app(
            c, requires_signed_requests=True, allowed_weak_algorithms="rsaSha1")]),
        "upload-then-activate", ["verification"], "site-administration",
        ["Upload first", "Site SP Certificate Manager"], ["AADSTS76021", "RSA-SHA256"]),
    "verification setting not readable (null)": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(c, requires_signed_requests=None)]),
        "unknown", [], "control-hub",
        ["Not known: I could not read whether Cisco Webex requires verification certificates",
         "verification setting unknown"], ["Without Graph"]),
    "token encryption with the current certificate, metadata use=signing": (
        lambda c: TrustFacts([control_hub(c, "signing")], entra_apps=[webex_app(
            c, token_encryption_thumbprint=sha1(c["webex_old"]))]),
        "upload-then-activate", ["token-encryption"], "control-hub",
        ["Upload first: import the new Webex certificate", "> Token encryption", "one maintenance window",
         "token encryption must switch to the new Webex certificate"],
        ["does not need to be uploaded", "No upload to Azure"]),
    "token encryption, metadata use=encryption": (
        lambda c: TrustFacts([control_hub(c, "encryption")], entra_apps=[webex_app(
            c, token_encryption_thumbprint=sha1(c["webex_old"]))]),
        "upload-then-activate", ["token-encryption"], "control-hub",
        ["> Token encryption", "token encryption must switch"], ["No upload to Azure"]),
    "token encryption, metadata without use": (
        lambda c: TrustFacts([control_hub(c, "none")], entra_apps=[webex_app(
            c, token_encryption_thumbprint=sha1(c["webex_old"]))]),
        "upload-then-activate", ["token-encryption"], "control-hub",
        ["> Token encryption", "token encryption must switch"], ["No upload to Azure"]),
    "token encryption already with the new certificate": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(
            c, token_encryption_thumbprint=sha1(c["webex_new"]))]),
        "activate-only", [], "control-hub",
        ["already encrypts tokens for the new Webex certificate", "Webex cannot decrypt sign-ins"], ["Upload first"]),
    "token encryption with a certificate not in the metadata": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(c, token_encryption_thumbprint="AB" * 20)]),
        "upload-then-activate", ["token-encryption"], "control-hub",
        ["token encryption certificate is not in the Webex metadata", "> Token encryption"], []),
    "token encryption key without thumbprint": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(c, token_encryption_state="unidentified")]),
        "unknown", [], "control-hub", ["a certificate I cannot identify", "cannot be identified"], []),
    "verification required and token encryption": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(
            c, requires_signed_requests=True, verification_certificate_thumbprints=verify(c, "webex_old"),
            token_encryption_thumbprint=sha1(c["webex_old"]))]),
        "upload-then-activate", ["verification", "token-encryption"], "control-hub",
        ["> Verification certificates and import it in", "> Token encryption",
         "activate it for token encryption and in Control Hub"], []),
    "unsigned requests while verification is required": (
        lambda c: TrustFacts([site_administration(c, signed_requests=False)], entra_apps=[site_app(
            c, requires_signed_requests=True)]),
        "upload-then-activate", ["verification"], "site-administration",
        ["Sign-ins are rejected now", "AuthnRequestsSigned=\"false\"", "AADSTS76021", "'AuthnRequest Signed'"], []),
    "another service provider's metadata": (
        lambda c: TrustFacts(other_sp_documents=[parse_document(make_sp_metadata(
            "urn:federation:MicrosoftOnline", [c["microsoft_sp"]], acs=["https://login.microsoftonline.com/login.srf"]))],
            entra_apps=[webex_app(c)]),
        "not-applicable", [], None,
        ["service provider urn:federation:MicrosoftOnline", "Not a Webex document", "provider's new metadata"],
        ["Webex SP certificate", "Webex's SP certificate", "activate the new certificate in"]),
    "Entra federation metadata alone, certificate critical": (
        lambda c: TrustFacts(entra_documents=[parse_document(make_idp_metadata(
            "https://sts.windows.net/tenant/", [c["entra_soon"]], wsfed=True), source="federationmetadata.xml")]),
        "not-applicable", [], None,
        ["Entra's signing certificate", "expires in 9 days", "Federation Metadata XML"],
        ["new Webex certificate", "Upload first", "No upload to Azure"]),
    "control hub without Graph": (
        lambda c: TrustFacts([control_hub(c)]),
        "unknown", [], "control-hub",
        ["Not known without the Entra app's settings", "> Verification certificates", "> Token encryption",
         "az ad app show", "Control Hub > Organization Settings"], ["Without Graph", "Site Administration >"]),
    "site administration without Graph": (
        lambda c: TrustFacts([site_administration(c)]),
        "unknown", [], "site-administration",
        ["Not known without the Entra app's settings", "> Verification certificates", "> Token encryption",
         "Site SP Certificate Manager"], ["Control Hub >"]),
    "the Webex app's Entra certificate is critical": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(c, entra="entra_soon")]),
        "activate-only", [], "control-hub",
        ["Entra's signing certificate", "for Cisco Webex expires in 9 days", "No upload to Azure"], []),
    "a non-Webex app given with Webex metadata": (
        lambda c: TrustFacts([control_hub(c)], entra_apps=[webex_app(
            c, display_name="Salesforce", sp_entity_ids=["https://acme.my.salesforce.com"], reply_urls=[]),
            webex_app(c, display_name="Workday", sp_entity_ids=["https://wd3.workday.com"], reply_urls=[])]),
        "unknown", [], "control-hub",
        ["None of the Entra apps I know has the Identifier"], ["Salesforce: verification"]),
}

SUMMARY_STARTS = {
    "unsigned requests while verification is required": "Sign-ins are rejected now",
    "Entra federation metadata alone, certificate critical": "Entra's signing certificate",
    "the Webex app's Entra certificate is critical": "Entra's signing certificate",
    "another service provider's metadata": "Service provider urn:federation:MicrosoftOnline",
    "token encryption with the current certificate, metadata use=signing": "Upload first",
    "control hub, verification off, no token encryption": "No upload to Azure",
}


def everything(diagnosis) -> str:
    return " ".join([diagnosis.summary, diagnosis.upload_answer]
                    + [f"{f.title}: {f.text}" for f in diagnosis.findings])


@pytest.mark.parametrize("case", list(CASES))
def test_answer_for_each_entra_configuration(certs, case):
    build, answer, upload_to, activate_in, present, absent = CASES[case]
    diagnosis = diagnose(build(certs), NOW)
    assert (diagnosis.upload_verdict, diagnosis.upload_to, diagnosis.activate_in) == (answer, upload_to, activate_in)
    text = everything(diagnosis)
    assert [w for w in present if w not in text] == []
    assert [w for w in absent if w in text] == []
    assert diagnosis.summary.startswith(SUMMARY_STARTS.get(case, ""))
    assert len(re.findall(r"\. [A-Z]", diagnosis.summary)) <= 1   # one or two sentences
    as_json = diagnosis.to_json()
    assert list(as_json) == ["answer", "upload_to", "activate_in", "summary", "findings"]
    assert all(set(f) == {"severity", "title", "text"} for f in as_json["findings"])
