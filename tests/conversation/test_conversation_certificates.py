"""Certificate intelligence and the Entra inventory, as conversations in a space."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cards.text import summarize_card
from tests.support.certfactory import make_cert, make_sp_metadata

ORG = "7f9e2c4a-0000-4000-8000-0000000000e1"
CONTROL_HUB = f"https://idbroker.webex.com/{ORG}"
NOW = datetime.now(timezone.utc)


def control_hub_metadata(days_left: int = 25) -> bytes:
    cert, _ = make_cert("idbroker.webex.com", NOW - timedelta(days=300), NOW + timedelta(days=days_left))
    return make_sp_metadata(CONTROL_HUB, [cert], [cert], [f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"])


def site_admin_metadata(days_left: int = 200) -> bytes:
    cert, _ = make_cert("contoso.webex.com", NOW - timedelta(days=100), NOW + timedelta(days=days_left))
    return make_sp_metadata("https://contoso.webex.com", [cert], [],
                            ["https://contoso.webex.com/dispatcher/SAML2AuthService?siteurl=contoso"])


def drop(chat, name: str, data: bytes, **file_options):
    content = chat.webex.add_file(name, data, "application/xml", **file_options)
    return chat.say(chat.alice, "", files=[content])


def card_texts(card) -> str:
    from cards.text import summarize_card
    return summarize_card(card)


# --- files and URLs --------------------------------------------------------------------------------

def test_a_dropped_control_hub_metadata_file_gets_a_status_card_and_is_tracked(chat):
    replies = drop(chat, "idb-meta-org-SP.xml", control_hub_metadata(days_left=25))
    assert len(replies) == 1
    text = card_texts(replies[0].card)
    assert "Webex SP metadata (Control Hub" in text and "1 certificate, now tracked in this space." in text
    assert "Expires in 25 days" in text or "Expires in 24 days" in text
    assert "signing, encryption certificate" in text              # one row: the certificate serves both
    assert len(chat.services.storage.tracking.certificates(room_id=chat.room.id)) == 2   # signing + encryption


def test_dropping_the_same_document_again_updates_instead_of_duplicating(chat):
    drop(chat, "idb-meta-org-SP.xml", control_hub_metadata())
    drop(chat, "idb-meta-org-SP.xml", control_hub_metadata())            # a new certificate, same file name
    storage = chat.services.storage
    assert len(storage.tracking.sources(room_id=chat.room.id)) == 1
    assert len(storage.tracking.certificates(room_id=chat.room.id)) == 2   # the old ones are history now
    assert len(storage.tracking.certificates(room_id=chat.room.id, present_only=False)) == 4


def test_hostile_files_are_refused_with_one_clear_line(chat):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b'<lolz>&lol2;</lolz>')
    replies = drop(chat, "evil.xml", bomb)
    assert len(replies) == 1 and replies[0].card is None
    assert "\n" not in replies[0].body
    assert "DTD" in replies[0].body or "entit" in replies[0].body.lower()
    assert chat.services.storage.tracking.sources(room_id=chat.room.id) == []


@pytest.mark.parametrize("scan_state, expected", [("infected", "malicious"), ("unscannable", "could not scan")])
def test_files_webex_flags_are_not_read(chat, scan_state, expected):
    replies = drop(chat, "idb-meta.xml", control_hub_metadata(), scan_state=scan_state)
    assert expected in replies[0].body
    assert chat.services.storage.tracking.sources(room_id=chat.room.id) == []


def test_a_file_still_being_scanned_is_read_once_webex_is_done(chat):
    replies = drop(chat, "idb-meta.xml", control_hub_metadata(), scan_state="scanning", scanning_polls=1,
                   retry_after=0)
    assert replies[0].card is not None


def test_files_over_the_size_limit_are_refused(make_chat):
    chat = make_chat(max_document_bytes=1000)
    replies = drop(chat, "big.xml", control_hub_metadata())
    assert "bytes" in replies[0].body and replies[0].card is None


def test_check_reads_a_metadata_url(graph_chat):
    chat = graph_chat
    url = chat.graph.metadata_url("0ab4c0de-0000-4000-8000-00000000a001")
    replies = chat.say(chat.alice, f"check {url}")
    assert "Entra federation metadata" in card_texts(replies[0].card)
    assert chat.services.storage.tracking.sources(room_id=chat.room.id)[0].kind == "url"


def test_check_refuses_internal_addresses_unless_allowed(make_chat):
    chat = make_chat(allow_private_urls=False)
    reply = chat.say(chat.alice, "check http://127.0.0.1:9/metadata.xml")[0]
    assert "internal address" in reply.body


def test_check_without_a_url_explains_how(chat):
    assert "Give me the URL" in chat.say(chat.alice, "check")[0].body


# --- status, explain, forget --------------------------------------------------------------------------

def test_status_lists_every_tracked_certificate_worst_first(chat):
    assert "tracks no certificate yet" in chat.say(chat.alice, "status")[0].body
    drop(chat, "site.xml", site_admin_metadata(days_left=200))
    drop(chat, "ch.xml", control_hub_metadata(days_left=10))
    card = chat.say(chat.alice, "status")[0].card
    rows = [b for b in card["body"] if b["type"] == "ColumnSet"]
    emojis = [row["columns"][0]["items"][0]["text"] for row in rows]
    assert emojis == ["🟠", "🟢"]        # one row per certificate: Control Hub's signs and encrypts
    where = rows[0]["columns"][1]["items"][2]["text"]
    assert "Control Hub" in where and "(signing, encryption)" in where


def test_explain_answers_the_upload_question_without_graph_as_unknown(chat):
    drop(chat, "ch.xml", control_hub_metadata())
    text = card_texts(chat.say(chat.alice, "explain")[0].card)
    assert "Upload the new Webex certificate to Azure?" in text
    assert "Not known without the Entra app's settings" in text


def test_forget_stops_tracking_a_source(chat):
    drop(chat, "ch.xml", control_hub_metadata())
    assert "Which source?" in chat.say(chat.alice, "forget 7")[0].body
    assert "Stopped tracking #1" in chat.say(chat.alice, "forget 1")[0].body
    assert chat.services.storage.tracking.certificates(room_id=chat.room.id) == []


# --- Entra apps through Graph ---------------------------------------------------------------------------

def test_apps_without_graph_explains_what_to_configure(chat):
    reply = chat.say(chat.alice, "apps")[0]
    assert "AZURE_TENANT_ID" in reply.body and "Application.Read.All" in reply.body


def test_apps_lists_saml_apps_worst_first(graph_chat):
    card = graph_chat.say(graph_chat.alice, "apps")[0].card
    rows = [b for b in card["body"] if b["type"] == "ColumnSet"]
    names = [row["columns"][1]["items"][0]["text"] for row in rows]
    assert names[0] == "Cisco Webex"                  # its active certificate expires in 20 days
    assert "Salesforce" in names


def test_app_shows_certificates_settings_and_the_verdict(graph_chat):
    card = graph_chat.say(graph_chat.alice, "app cisco webex")[0].card
    text = card_texts(card)
    assert text.splitlines()[2].startswith("Its active signing certificate expires soon: not after ")
    assert "Active token-signing certificate" in text and "no upload to Azure" in text
    assert "Signed requests: not required" in summarize_card(card, opened=True)     # settings behind Details


def test_an_app_that_requires_signed_requests_needs_the_upload_first(graph_chat):
    card = graph_chat.say(graph_chat.alice, "app Webex Meetings")[0].card
    assert "Signed requests: required" in summarize_card(card, opened=True)
    assert "Verification certificates first, then activate it in Site Administration" in card_texts(card)


def test_unknown_and_ambiguous_app_names_are_explained(graph_chat):
    assert "no SAML app called “nope”" in graph_chat.say(graph_chat.alice, "app nope")[0].body
    assert "matches several apps" in graph_chat.say(graph_chat.alice, "app webex")[0].body


def test_watching_an_app_tracks_its_signing_certificates_and_feeds_the_diagnosis(graph_chat):
    chat = graph_chat
    chat.say(chat.alice, "app Cisco Webex")
    replies = chat.click(chat.alice, chat.last_card_message()["id"], button="Watch in this space")
    assert "now tracks **Cisco Webex**" in replies[0].body
    drop(chat, "idb-meta.xml", control_hub_metadata(days_left=40))
    status = card_texts(chat.say(chat.alice, "status")[0].card)
    assert "Entra signing certificate of Cisco Webex" in status and "Entra app Cisco Webex (active)" in status
    explain = card_texts(chat.say(chat.alice, "explain")[0].card)
    assert "No upload to Azure: Cisco Webex neither requires" in explain


def test_the_watch_command_and_a_second_watch_do_not_duplicate(graph_chat):
    chat = graph_chat
    assert "now tracks **Salesforce**" in chat.say(chat.alice, "watch Salesforce")[0].body
    assert "already tracks **Salesforce**" in chat.say(chat.alice, "watch Salesforce")[0].body
    assert len(chat.services.storage.tracking.sources(room_id=chat.room.id, kind="entra-app")) == 1
    assert len(chat.services.storage.tracking.certificates(room_id=chat.room.id)) == 2


def test_secrets_in_a_url_query_stay_out_of_labels_and_errors(graph_chat):
    chat = graph_chat
    cert_url = chat.graph.metadata_url("0ab4c0de-0000-4000-8000-00000000a001") + "&sig=SECRET-SAS-TOKEN"
    reply = chat.say(chat.alice, f"check {cert_url}")[0]
    assert "SECRET-SAS-TOKEN" not in reply.body and "SECRET-SAS-TOKEN" not in str(reply.card)
    broken = chat.graph.root_url + "/nope.pem?sig=SECRET-SAS-TOKEN"
    assert "SECRET-SAS-TOKEN" not in chat.say(chat.alice, f"check {broken}")[0].body


def test_a_space_tracks_at_most_the_configured_number_of_sources(make_chat):
    chat = make_chat(max_sources_per_space=2)
    drop(chat, "one.xml", control_hub_metadata())
    drop(chat, "two.xml", site_admin_metadata())
    drop(chat, "two.xml", site_admin_metadata())                     # re-reading a source is always fine
    reply = drop(chat, "three.xml", control_hub_metadata())[0]
    assert "already tracks 2 sources" in reply.body
    assert len(chat.services.storage.tracking.sources(room_id=chat.room.id)) == 2


def test_names_from_certificates_cannot_become_links_in_cards(chat):
    from tests.support.certfactory import pem_of
    cert, _ = make_cert("x[Re-login](https://evil.example)", NOW - timedelta(days=1), NOW + timedelta(days=90))
    card = drop(chat, "evil.pem", pem_of(cert))[0].card
    from cards.text import markdown_texts
    texts = "\n".join(markdown_texts(card) + markdown_texts(chat.say(chat.alice, "status")[0].card))
    assert "[Re-login](" not in texts and "\\[Re-login\\](" in texts


def test_a_url_source_that_crashes_the_refresh_does_not_stop_the_others(chat, monkeypatch, caplog):
    from rollover import tracking
    now = chat.services.clock().timestamp()
    first, second = (chat.services.storage.tracking.upsert_source(
        room_id=chat.room.id, kind="url", location=f"https://idp.example.com/{name}.xml", label=name,
        added_by="alice@example.com", content=None, now=now) for name in ("broken", "fine"))
    read = []

    def track_url(services, *, room_id, url, added_by, label):
        read.append(url)
        if url.endswith("broken.xml"):
            raise RuntimeError("a bug in the parser")
    monkeypatch.setattr(tracking, "track_url", track_url)
    results = dict((source.id, error) for source, error in tracking.refresh_url_sources(chat.services))
    assert read == [first.location, second.location]
    assert "incident" in results[first.id] and results[second.id] is None
    assert "a bug in the parser" in caplog.text                      # the traceback is in the log
    stored = {s.id: s for s in chat.services.storage.tracking.sources(room_id=chat.room.id)}
    assert "could not be re-read" in stored[first.id].error.lower()


@pytest.mark.parametrize("name", ["cert_version_6.pem", "cert_unknown_key_oid.pem", "cert_ec_point_off_curve.pem",
                                  "cert_subject_invalid_utf8.pem", "cert_year_0.pem", "valid_until_overflow.xml",
                                  "xml_encoding_unknown.xml"])
def test_a_malformed_document_dropped_in_the_space_gets_its_reason_not_an_incident(chat, name):
    corpus = Path(__file__).resolve().parents[1] / "unit" / "corpus"
    reply = drop(chat, name, (corpus / name).read_bytes())[0]
    assert reply.body.startswith("Cannot read") and "incident" not in reply.body
