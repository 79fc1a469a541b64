"""Trust diagnosis: one test per case the product must explain."""

import pytest

from rollover.certificates.diagnosis import (
    CONTROL_HUB,
    SITE_ADMIN,
    EntraAppFacts,
    EntraSigningCertificate,
    TrustFacts,
    classify_webex_entity,
    diagnose,
)
from rollover.certificates.health import thumbprint
from rollover.certificates.parsing import EntityInfo, parse_document
from tests.support.certfactory import der_of, make_cert, make_idp_metadata, make_sp_metadata, utc

NOW = utc(2025, 6, 1)
ORG = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CH_ENTITY = f"https://idbroker.webex.com/{ORG}"
CH_ACS = f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"
SITE_ACS = "https://acme.webex.com/dispatcher/SAML2AuthService?siteurl=acme"


@pytest.fixture(scope="module")
def certs():
    entra = "Microsoft Azure Federated SSO Certificate"   # the subject Entra gives its SAML signing certificates
    made = {
        "webex_old": make_cert("webex-sp-2024", utc(2024, 7, 1), utc(2025, 7, 1), key_index=0),
        "webex_new": make_cert("webex-sp-2025", utc(2025, 5, 1), utc(2026, 7, 1), key_index=1),
        "webex_future": make_cert("webex-sp-future", utc(2025, 9, 1), utc(2026, 9, 1), key_index=1),
        "entra_active": make_cert(entra, utc(2022, 9, 28), utc(2025, 9, 28), key_index=2),
        "entra_next": make_cert(entra, utc(2024, 5, 7), utc(2027, 5, 7), key_index=3),
        "entra_expired": make_cert(entra, utc(2022, 1, 1), utc(2025, 1, 1), key_index=2),
        "entra_future": make_cert(entra, utc(2025, 8, 1), utc(2028, 8, 1), key_index=3),
    }
    return {name: cert for name, (cert, _key) in made.items()}


def sha1(cert):
    return thumbprint(der_of(cert))


def signing(cert, active):
    return EntraSigningCertificate(sha1(cert), cert.not_valid_before_utc, cert.not_valid_after_utc, active)


def app(certs, **overrides):
    facts = dict(display_name="Webex", app_id="11111111-2222-3333-4444-555555555555",
                 signing_certificates=[signing(certs["entra_active"], True)],
                 requires_signed_requests=False, notification_emails=["it@example.com"])
    facts.update(overrides)
    return EntraAppFacts(**facts)


def control_hub_metadata(certs, *names, encryption=()):
    data = make_sp_metadata(CH_ENTITY, [certs[n] for n in names], [certs[n] for n in encryption], [CH_ACS])
    return parse_document(data, source="idb-meta-SP.xml")


def titles(diagnosis, severity=None):
    return [f.title for f in diagnosis.findings if severity is None or f.severity == severity]


def test_site_administration_document_is_recognised_and_places_named(certs):
    document = parse_document(make_sp_metadata("http://www.webex.com", [certs["webex_new"]], acs=[SITE_ACS]))
    diagnosis = diagnose(TrustFacts(webex_documents=[document], entra_apps=[app(certs)]), NOW)
    [trust] = diagnosis.trusts
    assert (trust.kind, trust.name, trust.inferred) == (SITE_ADMIN, "acme", False)
    assert diagnosis.activate_in == "site-administration"
    assert "Site SP Certificate Manager" in diagnosis.upload_answer
    assert "Control Hub" not in diagnosis.upload_answer
    assert any("Site Administration SSO (site acme)" in t for t in titles(diagnosis))


@pytest.mark.parametrize("entity_id, acs, expected", [
    (CH_ENTITY, [CH_ACS], (CONTROL_HUB, ORG, False)),
    (f"https://idbroker-eu.webex.com/{ORG}", [], (CONTROL_HUB, ORG, True)),
    ("urn:example:sp", [CH_ACS], (CONTROL_HUB, ORG, False)),
    ("http://www.webex.com", [], (SITE_ADMIN, "", False)),
    ("https://acme.webex.com", [], (SITE_ADMIN, "acme", False)),
    ("https://sp.example.com/saml", ["https://sp.example.com/acs"], None),
])
def test_classify_webex_entity(entity_id, acs, expected):
    trust = classify_webex_entity(EntityInfo(entity_id, roles=["sp"], acs_urls=acs))
    assert (None if trust is None else (trust.kind, trust.name, trust.inferred)) == expected


def test_idp_entity_is_never_a_webex_trust():
    assert classify_webex_entity(EntityInfo(CH_ENTITY, roles=["idp"])) is None


def test_entra_rollover_with_inactive_certificate_needs_a_maintenance_window(certs):
    entra = app(certs, signing_certificates=[signing(certs["entra_active"], True), signing(certs["entra_next"], False)])
    diagnosis = diagnose(TrustFacts(webex_documents=[control_hub_metadata(certs, "webex_new")], entra_apps=[entra]),
                         NOW)
    [finding] = [f for f in diagnosis.findings if "rollover" in f.title]
    assert finding.severity == "warning" and finding.inferred
    assert "maintenance window" in finding.text and "only one IdP certificate" in finding.text
    assert finding.certificate_sha1 == sha1(certs["entra_next"])
    assert "do not activate" not in finding.text


def test_entra_metadata_with_two_signing_certs_hints_rollover_without_graph(certs):
    entra_doc = parse_document(make_idp_metadata("https://sts.windows.net/t/",
                                                 [certs["entra_active"], certs["entra_next"]], wsfed=True),
                               source="federationmetadata.xml")
    diagnosis = diagnose(TrustFacts(entra_documents=[entra_doc]), NOW)
    [finding] = [f for f in diagnosis.findings if "several signing certificates" in f.title]
    assert finding.inferred and "2 signing certificates" in finding.text


def test_expired_entra_signing_certificate_is_an_outage(certs):
    entra = app(certs, signing_certificates=[signing(certs["entra_expired"], True)])
    diagnosis = diagnose(TrustFacts(entra_apps=[entra]), NOW)
    [finding] = [f for f in diagnosis.findings if f.severity == "expired"]
    assert "expired" in finding.title and "SSO is failing" in finding.text
    assert diagnosis.summary.startswith("Entra's signing certificate") and "sign-ins fail" in diagnosis.summary


def test_not_yet_valid_inactive_and_webex_certificates(certs):
    entra = app(certs, signing_certificates=[signing(certs["entra_active"], True),
                                             signing(certs["entra_future"], False)])
    diagnosis = diagnose(TrustFacts(webex_documents=[control_hub_metadata(certs, "webex_old", "webex_future")],
                                    entra_apps=[entra]), NOW)
    rollover = next(f for f in diagnosis.findings if "rollover" in f.title)
    assert "do not activate it before then" in rollover.text and "2025-08-01" in rollover.text
    webex = next(f for f in diagnosis.findings if f.title == "New Webex certificate not valid yet")
    assert webex.certificate_sha1 == sha1(certs["webex_future"]) and "2025-09-01" in webex.text


def test_expired_webex_certificate_without_replacement_is_critical_but_superseded_one_is_not(certs):
    later = utc(2025, 8, 1)   # webex_old expired on 1 July
    only_old = diagnose(TrustFacts(webex_documents=[control_hub_metadata(certs, "webex_old")]), later)
    assert "Webex SP certificate expired" in titles(only_old, "expired")
    both = diagnose(TrustFacts(webex_documents=[control_hub_metadata(certs, "webex_old", "webex_new")]), later)
    assert "Webex SP certificate expired" not in titles(both)
    assert "Old Webex certificate expired" in titles(both, "info")


def test_webex_trusting_another_certificate_than_entra_signs_with_is_an_outage_risk(certs):
    trusted = parse_document(make_idp_metadata("https://sts.windows.net/t/", [certs["entra_next"]]),
                             source="imported.xml")
    diagnosis = diagnose(TrustFacts(webex_documents=[control_hub_metadata(certs, "webex_new")],
                                    webex_trusted_idp_documents=[trusted], entra_apps=[app(certs)]), NOW)
    [finding] = [f for f in diagnosis.findings if "different certificate" in f.title]
    assert finding.severity == "critical" and not finding.inferred
    assert sha1(certs["entra_active"]) in finding.text and "sign-ins fail" in finding.text
    assert finding.trust == CONTROL_HUB
    assert diagnosis.summary.startswith("Webex trusts ") and "sign-ins fail" in diagnosis.summary


def test_webex_trusting_the_active_certificate_is_ok(certs):
    trusted = parse_document(make_idp_metadata("https://sts.windows.net/t/", [certs["entra_active"]]))
    diagnosis = diagnose(TrustFacts(webex_trusted_idp_documents=[trusted], entra_apps=[app(certs)]), NOW)
    assert "Webex trusts the certificate Entra signs with" in titles(diagnosis, "ok")
    assert not titles(diagnosis, "critical")


def test_explains_which_certificate_is_which_and_flags_missing_notification_emails(certs):
    diagnosis = diagnose(TrustFacts(entra_apps=[app(certs, notification_emails=[])]), NOW)
    explanation = next(f for f in diagnosis.findings if f.title == "Which certificate is which")
    assert "token-signing certificate" in explanation.text and "SP certificate" in explanation.text
    assert "Webex: nobody receives Entra's expiry e-mails" in titles(diagnosis, "warning")


def test_findings_are_sorted_worst_first(certs):
    entra = app(certs, signing_certificates=[signing(certs["entra_expired"], True)], notification_emails=[])
    severities = [f.severity for f in diagnose(TrustFacts(entra_apps=[entra]), NOW).findings]
    order = ["expired", "critical", "warning", "info", "ok"]
    assert severities == sorted(severities, key=order.index)
