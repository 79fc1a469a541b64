"""EntraClient through the real msgraph-sdk against the loopback Graph."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fakes.graph import LocalGraph, make_self_signed_certificate, pooled_rsa_key, selects_key_credentials
from rollover.integrations.entra_client import (
    EntraClient,
    GraphConfigurationError,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRequestError,
    GraphThrottledError,
    LocalGraphCredential,
    to_trust_facts,
)

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)



def _seed(graph: LocalGraph, name: str, days: int = 20, random_cki: bool = False) -> dict:
    sp = graph.add_saml_app(name)
    graph.add_signing_certificate(sp["id"], not_before=NOW - dt.timedelta(days=300),
                                  not_after=NOW + dt.timedelta(days=days), active=True,
                                  custom_key_identifier=b"uploaded-by-script" if random_cki else None)
    return sp


@pytest.mark.parametrize("apps, expected_requests", [
    (0, 1),      # one empty SP page, no app-registration query
    (1, 2),      # one SP page + one "appId in (...)" query
    (1000, 4),   # ceil(1000/999) SP pages + ceil(1000/999) app-registration pages
])
def test_inventory_request_count(graph, client, apps, expected_requests):
    for index in range(apps):
        _seed(graph, f"App {index:04d}")
    graph.add_non_saml_app("Not SAML", "oidc") if apps == 1 else None
    inventory = client.inventory()
    assert len(inventory) == apps
    assert len(graph.requests) == expected_requests
    assert graph.single_object_key_selects == 0   # thumbprints came from customKeyIdentifier
    if apps:
        first = inventory[0]
        assert first.signing_certificates[0].active and first.application_object_id
        assert first.active_thumbprint == graph.verify_thumbprints(first.sp_id)[0]


def test_the_app_registration_pages_are_fetched_while_the_service_principal_pages_still_come(graph, client):
    for index in range(60):
        _seed(graph, f"App {index:04d}")
    graph.latency = 0.2                                  # each page takes a while: the chains overlap
    inventory = client.inventory(page_size=20)           # 3 SP pages, 3 app-registration pages (60 > 15)
    paths = [request.path for request in graph.requests]
    assert len(inventory) == 60 and len(paths) == 6
    # In the order Graph answered: an app-registration page came back before the last SP page.
    last_sp_page = max(n for n, path in enumerate(paths) if "servicePrincipals" in path)
    assert any("applications" in path for path in paths[:last_sp_page])
    entry = inventory[0]
    assert entry.application_object_id and entry.signing_certificates[0].active


def test_inventory_fetches_the_key_only_where_customkeyidentifier_is_not_a_thumbprint(graph, client):
    plain = _seed(graph, "Portal cert")
    uploaded = _seed(graph, "Uploaded cert", random_cki=True)
    der, _key = make_self_signed_certificate("CN=enc", NOW, NOW + dt.timedelta(days=90), pooled_rsa_key(0))
    graph.add_encryption_certificate(plain["id"], der, "CN=enc")
    inventory = {app.display_name: app for app in client.inventory()}
    assert graph.single_object_key_selects == 1
    assert [r.path for r in graph.requests_matching("GET", r"/servicePrincipals/") if selects_key_credentials(r)] == [
        f"/v1.0/servicePrincipals/{uploaded['id']}"]
    certificate = inventory["Uploaded cert"].signing_certificates[0]
    assert certificate.thumbprint_source == "key"
    assert certificate.thumbprint == graph.verify_thumbprints(uploaded["id"])[0]
    assert inventory["Portal cert"].token_encryption_thumbprint is not None
    assert len(inventory["Portal cert"].signing_certificates) == 1   # the encryption key is not a signing cert


def test_application_facts_and_trust_facts(graph, client):
    sp = graph.add_saml_app("Webex", requires_signed_requests=True, identifier_uris=["https://idbroker.webex.com/o"],
                            notification_emails=["ops@contoso.example"])
    graph.add_signing_certificate(sp["id"], not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9),
                                  active=True)
    application = graph._lookup(graph.applications, f"appId='{sp['appId']}'")
    der, _key = make_self_signed_certificate("CN=idbroker.webex.com", NOW, NOW + dt.timedelta(days=60),
                                             pooled_rsa_key(0))
    graph.add_verification_certificate(application["id"], der, "CN=idbroker.webex.com")
    graph.add_client_secret(application["id"], "provisioning", NOW + dt.timedelta(days=30))
    registration = client.get_application_by_app_id(sp["appId"])
    assert registration.signed_requests_required is True and len(registration.client_secrets if hasattr(
        registration, "client_secrets") else registration.password_credentials) == 1
    facts = to_trust_facts(client.inventory()[0])
    assert facts.requires_signed_requests is True and facts.sp_entity_ids == ["https://idbroker.webex.com/o"]
    assert len(facts.verification_certificate_thumbprints) == 1 and facts.signing_certificates[0].active
    assert facts.notification_emails == ["ops@contoso.example"]


def test_find_service_principal(graph, client):
    sp = _seed(graph, "Cisco Webex")
    _seed(graph, "Twin")
    _seed(graph, "Twin")
    assert client.find_service_principal("cisco webex").id == sp["id"]
    assert client.find_service_principal(sp["appId"]).id == sp["id"]
    with pytest.raises(GraphRequestError, match="2 enterprise apps"):
        client.find_service_principal("Twin")
    with pytest.raises(GraphNotFoundError):
        client.find_service_principal("O'Brien's app")


def test_throttling_is_retried_honouring_retry_after(graph, client):
    graph.inject_fault("GET", r"/servicePrincipals$", status=429, retry_after="1")
    graph.inject_fault("GET", r"/applications$", status=503, retry_after="1")
    _seed(graph, "App")
    started = time.monotonic()
    assert len(client.inventory()) == 1
    assert time.monotonic() - started >= 2.0
    assert [entry.status for entry in graph.requests] == [429, 200, 503, 200]


def test_throttling_after_all_retries_is_a_clear_error(graph):
    graph.inject_fault("GET", r"/servicePrincipals$", status=429, retry_after="1", count=5)
    with EntraClient(graph.base_url, max_retries=1, retry_delay=0) as entra:
        with pytest.raises(GraphThrottledError, match="429"):
            entra.list_saml_service_principals()
    assert len(graph.requests) == 2


@pytest.mark.parametrize("permissions, message", [
    ([], "Application.Read.All"),
    (["GroupMember.Read.All"], "Application.Read.All"),
])
def test_read_without_permission_names_it(permissions, message):
    with LocalGraph(permissions=permissions) as graph, EntraClient(graph.base_url) as entra:
        with pytest.raises(GraphPermissionError, match=message) as raised:
            entra.inventory()
    assert "token" not in str(raised.value).lower()


def test_group_membership(graph, client):
    alice = graph.add_user("alice@contoso.example")
    bob = graph.add_user("bob@contoso.example", mail="bob.builder@contoso.example")
    graph.add_user("eve@contoso.example")
    inner = graph.add_group("Inner", [alice["id"]])
    approvers = graph.add_group("Approvers", [inner["id"], bob["id"]])
    assert client.is_member_of_group("alice@contoso.example", approvers["id"])           # transitive
    assert client.is_member_of_group("bob.builder@contoso.example", approvers["id"])     # by mail
    assert not client.is_member_of_group("eve@contoso.example", approvers["id"])
    assert not client.is_member_of_group("nobody@contoso.example", approvers["id"])
    graph.add_user("carol@contoso.example", mail="shared@contoso.example")
    graph.add_user("dave@contoso.example", mail="shared@contoso.example")
    with pytest.raises(GraphRequestError, match="Several Entra users"):
        client.is_member_of_group("shared@contoso.example", approvers["id"])


def test_group_membership_without_permission():
    with LocalGraph(permissions=["Application.Read.All"]) as graph, EntraClient(graph.base_url) as entra:
        graph.add_user("alice@contoso.example")
        with pytest.raises(GraphPermissionError, match="GroupMember.Read.All"):
            entra.is_member_of_group("alice@contoso.example", "g1")


def test_calls_from_many_threads_share_one_loop(graph, client):
    _seed(graph, "App")
    results, errors = [], []

    def work():
        try:
            results.append(len(client.list_saml_service_principals()))
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [1] * 8


def _write_pem(tmp_path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rollover-bot")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    path = tmp_path / "bot.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
                     + certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_credentials_from_settings(tmp_path):
    tenant, client_id = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    cases = [
        ({"client_secret": "s3cr3t-value"}, "client_secret"),
        ({"certificate_path": _write_pem(tmp_path)}, "certificate"),
        ({"certificate_path": _write_pem(tmp_path), "client_secret": "x"}, "certificate"),
        ({"use_managed_identity": True}, "managed_identity"),
    ]
    for settings, kind in cases:
        with EntraClient.from_settings(tenant, client_id, **settings) as entra:
            assert entra.credential_kind == kind
    with EntraClient.from_settings(None, None, base_url="http://127.0.0.1:9/v1.0") as local:
        assert isinstance(local.credential, LocalGraphCredential)


def test_configuration_errors_are_clear_and_secret_free(tmp_path):
    with pytest.raises(GraphConfigurationError, match="AZURE_CLIENT_SECRET"):
        EntraClient.from_settings("t", "c")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(GraphConfigurationError, match="AZURE_CLIENT_CERTIFICATE_PATH"):
        EntraClient.from_settings("t", "c", certificate_path=str(bad))
    with pytest.raises(GraphConfigurationError, match="only for 127.0.0.1"):
        EntraClient.from_settings("t", "c", client_secret="hunter2", base_url="http://graph-mock:8080/v1.0")
    with pytest.raises(GraphConfigurationError) as raised:
        EntraClient.from_settings("t", "c", client_secret="hunter2", base_url="http://graph-mock:8080/v1.0")
    assert "hunter2" not in str(raised.value)


def test_a_failing_registration_chain_ends_the_inventory_with_a_clear_error_and_no_orphan_requests(graph, client):
    for index in range(200):
        _seed(graph, f"App {index:04d}")
    graph.inject_fault("GET", r"/applications$", status=403)
    graph.latency = 0.05
    with pytest.raises(GraphPermissionError, match="Application.Read.All"):
        client.inventory(page_size=20)                    # 10 SP pages, had it gone on
    time.sleep(0.3)                                       # a page requested just before the end is answered
    answered = len(graph.requests)
    time.sleep(0.3)                                       # a chain left running would still be asking
    # The refused page stops the SP chain within a page or two (11 requests had it gone on to the end).
    assert len(graph.requests) == answered <= 6
