"""``bot.py explain``: the bot's answer from files, with the Webex app's JSON as `az ad app/sp show` print it."""

import base64
import hashlib
import io
import json

import pytest

from rollover.certificates.explain_cli import run_explain
from rollover.cli import main
from tests.support.certfactory import der_of, make_cert, make_sp_metadata, utc

NOW = "2025-06-01T00:00:00Z"
ORG = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CH_ENTITY = f"https://idbroker.webex.com/{ORG}"
CH_ACS = f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"
APP_ID = "5c1e7f3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"


def key_credential(key_id, usage, der, kind="AsymmetricX509Cert"):
    return {"customKeyIdentifier": base64.b64encode(hashlib.sha1(der).digest()).decode(), "displayName": "CN=x",
            "endDateTime": "2026-07-01T00:00:00Z", "key": None, "keyId": key_id,
            "startDateTime": "2024-07-01T00:00:00Z", "type": kind, "usage": usage}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    old, _ = make_cert("webex-sp-2024", utc(2024, 7, 1), utc(2025, 7, 1), key_index=0)
    new, _ = make_cert("webex-sp-2025", utc(2025, 5, 1), utc(2026, 7, 1), key_index=1)
    entra, _ = make_cert("Microsoft Azure Federated SSO Certificate", utc(2023, 9, 28), utc(2026, 9, 28), key_index=2)
    application = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
        "id": "9a8b7c6d-0000-4000-8000-000000000001", "appId": APP_ID, "displayName": "Cisco Webex",
        "identifierUris": [CH_ENTITY], "passwordCredentials": [{"keyId": "p", "hint": "abc"}],
        "keyCredentials": [key_credential("v1", "Verify", der_of(old)), key_credential("e1", "Encrypt", der_of(old))],
        "requestSignatureVerification": {"isSignedRequestRequired": True, "allowedWeakAlgorithms": None},
        "tokenEncryptionKeyId": "e1", "web": {"redirectUris": [CH_ACS]}}
    service_principal = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
        "id": "3f2e1d0c-0000-4000-8000-000000000002", "appId": APP_ID, "displayName": "Cisco Webex",
        "servicePrincipalNames": [APP_ID, CH_ENTITY], "replyUrls": [CH_ACS], "tokenEncryptionKeyId": None,
        "preferredTokenSigningKeyThumbprint": hashlib.sha1(der_of(entra)).hexdigest().upper(),
        "notificationEmailAddresses": ["it@example.com"],
        "keyCredentials": [key_credential("s1", "Sign", der_of(entra), "X509CertAndPassword"),
                           key_credential("s2", "Verify", der_of(entra))]}
    contents = {
        "app.json": json.dumps(application).encode(),
        "sp.json": json.dumps(service_principal).encode(),
        "other-sp.json": json.dumps({**service_principal, "appId": "00000000-0000-4000-8000-000000000009"}).encode(),
        "powershell.json": json.dumps({"AppId": APP_ID, "KeyCredentials": []}).encode(),
        "two.json": json.dumps({"value": [application, application]}).encode(),
        "webex.xml": make_sp_metadata(CH_ENTITY, [old, new], acs=[CH_ACS]),
        "microsoft.xml": make_sp_metadata("urn:federation:MicrosoftOnline", [entra],
                                          acs=["https://login.microsoftonline.com/login.srf"]),
        "nocert.xml": make_sp_metadata(CH_ENTITY, acs=[CH_ACS]),
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: str(folder / name) for name in contents}


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run_explain(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def explain_json(*argv):
    code, out, _ = run("--json", "--now", NOW, *argv)
    return code, json.loads(out)


def test_application_and_service_principal_files_give_the_definite_answer(files):
    code, answer = explain_json("--entra-app", files["sp.json"], "--entra-app", files["app.json"], files["webex.xml"])
    assert (answer["answer"], answer["upload_to"], answer["activate_in"]) == (
        "upload-then-activate", ["verification", "token-encryption"], "control-hub")
    assert answer["summary"].startswith("Upload first")
    assert list(answer) == ["answer", "upload_to", "activate_in", "summary", "findings"]
    assert code == 1   # the current Webex certificate has 30 days left; two things to do, nothing broken


def test_without_the_app_the_answer_is_unknown_and_names_both_places(files):
    code, answer = explain_json(files["webex.xml"])
    assert (answer["answer"], answer["upload_to"], answer["activate_in"]) == ("unknown", [], "control-hub")
    assert "Verification certificates" in answer["summary"] and "Token encryption" in answer["summary"]
    assert "Without Graph" not in json.dumps(answer) and code == 1


def test_another_service_provider_is_not_applicable(files):
    code, answer = explain_json("--entra-app", files["app.json"], files["microsoft.xml"])
    assert (answer["answer"], answer["upload_to"], answer["activate_in"]) == ("not-applicable", [], None)
    assert "service provider urn:federation:MicrosoftOnline" in answer["summary"]


@pytest.mark.parametrize("app_files, words", [
    (["powershell.json"], "PowerShell's"),
    (["two.json"], "holds 2 apps"),
    (["app.json", "other-sp.json"], "are not the same app"),
    (["app.json", "app.json"], "are both the application object"),
    (["webex.xml"], "not valid JSON"),
])
def test_app_files_that_cannot_be_used_exit_3_with_the_reason(files, app_files, words):
    argv = [arg for name in app_files for arg in ("--entra-app", files[name])]
    code, answer = explain_json(*argv, files["webex.xml"])
    assert code == 3
    assert any(words in f["text"] and f["title"].startswith("Could not read") for f in answer["findings"])


def test_a_document_without_certificate_or_unreadable_exits_3(files):
    assert explain_json(files["nocert.xml"])[0] == 3
    code, answer = explain_json(files["webex.xml"], "/no/such/file.xml")
    assert code == 3 and any(f["title"] == "Could not read /no/such/file.xml" for f in answer["findings"])


def test_text_mode_prints_the_summary_first(files):
    code, out, _ = run("--now", NOW, "--entra-app", files["app.json"], files["webex.xml"])
    assert out.startswith("Upload first") and "Answer: upload-then-activate" in out
    assert "Findings, worst first:" in out and code == 1


def test_bot_py_explain_runs_it(files, capsys):
    assert main(["explain", "--json", "--now", NOW, "--entra-app", files["app.json"], files["webex.xml"]]) == 1
    assert json.loads(capsys.readouterr().out)["answer"] == "upload-then-activate"


def test_help_and_usage_errors(capsys):
    assert run("--help")[0] == 0
    code, _, err = run("--now", "yesterday", "x.xml")
    assert code == 3 and "--now 'yesterday' is not an ISO 8601" in err
