"""The loopback Graph itself: Graph semantics the bot relies on, checked over plain HTTP."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests

from fakes.graph import LocalGraph, sha1_thumbprint

AUTH = {"Authorization": "Bearer test"}
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SCENARIO = Path(__file__).resolve().parents[2] / "fakes" / "scenarios" / "demo-tenant.yaml"


@pytest.fixture
def graph():
    with LocalGraph(page_size=2) as local:
        yield local


def _seed(graph: LocalGraph, name: str = "App", active_days: int = 20, old_days: int | None = None) -> dict:
    sp = graph.add_saml_app(name)
    graph.add_signing_certificate(sp["id"], not_before=NOW - dt.timedelta(days=300),
                                  not_after=NOW + dt.timedelta(days=active_days), active=True)
    if old_days is not None:
        graph.add_signing_certificate(sp["id"], not_before=NOW - dt.timedelta(days=900),
                                      not_after=NOW + dt.timedelta(days=old_days))
    return sp


def _get(graph: LocalGraph, path: str, **params) -> requests.Response:
    return requests.get(f"{graph.base_url}{path}", params=params, headers=AUTH, timeout=5)


def test_key_is_returned_only_on_a_single_object_select(graph):
    sp = _seed(graph)
    listed = _get(graph, "/servicePrincipals", **{"$select": "id,keyCredentials"}).json()["value"][0]
    unselected = _get(graph, f"/servicePrincipals/{sp['id']}").json()
    selected = _get(graph, f"/servicePrincipals/{sp['id']}", **{"$select": "keyCredentials"}).json()
    assert all(kc["key"] is None for kc in listed["keyCredentials"] + unselected["keyCredentials"])
    keys = {kc["usage"]: kc["key"] for kc in selected["keyCredentials"]}
    assert keys["Sign"] is None and keys["Verify"]
    verify = next(kc for kc in selected["keyCredentials"] if kc["usage"] == "Verify")
    assert base64.b64decode(verify["customKeyIdentifier"]) == hashlib.sha1(base64.b64decode(verify["key"])).digest()
    assert set(selected) == {"id", "keyCredentials", "@odata.context"}


def test_paging_filter_and_alternate_key(graph):
    for index in range(5):
        _seed(graph, f"App {index}")
    graph.add_non_saml_app("OIDC app", "oidc")
    first = _get(graph, "/servicePrincipals", **{"$filter": "preferredSingleSignOnMode eq 'saml'"}).json()
    pages, names, link = 1, [sp["displayName"] for sp in first["value"]], first.get("@odata.nextLink")
    while link:
        page = requests.get(link, headers=AUTH, timeout=5).json()
        names += [sp["displayName"] for sp in page["value"]]
        link, pages = page.get("@odata.nextLink"), pages + 1
    assert pages == 3 and names == [f"App {index}" for index in range(5)]
    app_id = graph.service_principals[next(iter(graph.service_principals))]["appId"]
    assert _get(graph, f"/servicePrincipals(appId='{app_id}')").json()["appId"] == app_id
    assert _get(graph, f"/applications(appId='{app_id}')").json()["appId"] == app_id
    assert _get(graph, "/servicePrincipals", **{"$filter": "bogus(x)"}).status_code == 400


def test_patch_echo_with_null_key_keeps_the_stored_key_and_new_passwords_are_refused(graph):
    sp = _seed(graph)
    current = _get(graph, f"/servicePrincipals/{sp['id']}").json()
    response = requests.patch(f"{graph.base_url}/servicePrincipals/{sp['id']}", headers=AUTH, timeout=5,
                              json={"keyCredentials": current["keyCredentials"]})
    assert response.status_code == 204
    assert graph.verify_thumbprints(sp["id"]) == [sp["preferredTokenSigningKeyThumbprint"]]
    refused = requests.patch(f"{graph.base_url}/servicePrincipals/{sp['id']}", headers=AUTH, timeout=5,
                             json={"passwordCredentials": [{"keyId": "00000000-0000-0000-0000-000000000001"}]})
    assert refused.status_code == 400 and "service actions" in refused.json()["error"]["message"]


def test_add_token_signing_certificate_creates_a_real_key_pair(graph):
    sp = _seed(graph)
    url = f"{graph.base_url}/servicePrincipals/{sp['id']}/addTokenSigningCertificate"
    bad_name = requests.post(url, headers=AUTH, timeout=5, json={"displayName": "Webex"})
    too_long = requests.post(url, headers=AUTH, timeout=5, json={
        "displayName": "CN=x", "endDateTime": (NOW + dt.timedelta(days=4 * 365)).isoformat()})
    created = requests.post(url, headers=AUTH, timeout=5, json={"displayName": "CN=Rollover"}).json()
    assert bad_name.status_code == 400 and too_long.status_code == 400
    assert created["thumbprint"] == sha1_thumbprint(base64.b64decode(created["key"]))
    stored = graph.service_principals[sp["id"]]
    pair = [kc for kc in stored["keyCredentials"] if kc["customKeyIdentifier"] == created["customKeyIdentifier"]]
    assert sorted(kc["usage"] for kc in pair) == ["Sign", "Verify"]
    assert created["keyId"] == next(kc["keyId"] for kc in pair if kc["usage"] == "Sign")
    assert any(pc["keyId"] == created["keyId"] for pc in stored["passwordCredentials"])
    assert stored["preferredTokenSigningKeyThumbprint"] != created["thumbprint"]   # stays inactive


def test_permission_denied_has_the_recorded_body_shape():
    with LocalGraph(permissions=["Application.Read.All"]) as graph:
        sp = _seed(graph)
        response = requests.patch(f"{graph.base_url}/servicePrincipals/{sp['id']}", headers=AUTH, timeout=5,
                                  json={"notificationEmailAddresses": []})
    error = response.json()["error"]
    assert response.status_code == 403 and error["code"] == "Authorization_RequestDenied"
    assert error["message"] == "Insufficient privileges to complete the operation."
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_faults_missing_token_and_request_log(graph):
    graph.inject_fault("GET", r"/servicePrincipals$", status=429, retry_after="3")
    throttled = _get(graph, "/servicePrincipals")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert _get(graph, "/servicePrincipals").status_code == 200
    assert requests.get(f"{graph.base_url}/servicePrincipals", timeout=5).status_code == 401
    assert [entry.status for entry in graph.requests] == [429, 200, 401]


@pytest.mark.parametrize("mode, expected", [("all", 2), ("active_only", 1)])
def test_federation_metadata_publishes_signing_certificates_active_first(mode, expected):
    with LocalGraph(metadata_certificates=mode) as graph:
        sp = _seed(graph, active_days=20, old_days=200)
        xml = requests.get(graph.metadata_url(sp["appId"]), timeout=5).text
    root = ElementTree.fromstring(xml)
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    assert root.get("entityID") == f"https://sts.windows.net/{graph.tenant_id}/"
    idp_certs = root.findall("md:IDPSSODescriptor/md:KeyDescriptor/ds:KeyInfo/ds:X509Data/ds:X509Certificate", ns)
    wsfed_certs = root.findall("md:RoleDescriptor/md:KeyDescriptor/ds:KeyInfo/ds:X509Data/ds:X509Certificate", ns)
    assert len(idp_certs) == expected and [c.text for c in idp_certs] == [c.text for c in wsfed_certs]
    assert sha1_thumbprint(base64.b64decode(idp_certs[0].text)) == sp["preferredTokenSigningKeyThumbprint"]
    assert root.find("md:IDPSSODescriptor/md:SingleSignOnService", ns) is not None


def test_demo_scenario_loads_with_relative_dates():
    graph = LocalGraph.from_scenario(SCENARIO, now=NOW)
    webex = graph.service_principals["0ab4c0de-0000-4000-8000-00000000b001"]
    verify = next(kc for kc in webex["keyCredentials"] if kc["usage"] == "Verify")
    assert dt.datetime.fromisoformat(verify["endDateTime"].replace("Z", "+00:00")) == NOW + dt.timedelta(days=20)
    assert len(graph.groups) == 1 and len(graph.users) == 3
