"""``bot.py check``: JSON contract, table, exit codes (0 ok, 1 warning, 2 critical, 3 unreadable)."""

import io
import json

import pytest

from rollover.certificates.check_cli import run_check
from tests.support.certfactory import make_cert, make_sp_metadata, pem_of, utc

NOW = "2025-06-01T00:00:00Z"
JSON_KEYS = ["entity_id", "role", "use", "subject", "issuer", "serial", "sha1", "sha256", "not_before", "not_after",
             "days_left", "status", "key", "signature_algorithm", "findings"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("check")
    specs = {
        "ok.pem": ("ok", utc(2025, 1, 1), utc(2027, 1, 1)),
        "warning.pem": ("warn", utc(2025, 1, 1), utc(2025, 7, 15)),
        "critical.pem": ("crit", utc(2025, 1, 1), utc(2025, 6, 10)),
        "expired.pem": ("exp", utc(2024, 1, 1), utc(2025, 5, 1)),
        "future.pem": ("future", utc(2025, 7, 1), utc(2027, 1, 1)),
    }
    paths = {}
    for name, (cn, start, end) in specs.items():
        paths[name] = folder / name
        paths[name].write_bytes(pem_of(make_cert(cn, start, end)[0]))
    ok_cert = make_cert("sp", utc(2025, 1, 1), utc(2027, 1, 1))[0]
    paths["sp.xml"] = folder / "sp.xml"
    paths["sp.xml"].write_bytes(make_sp_metadata("https://idbroker.webex.com/org", [ok_cert], [ok_cert],
                                                 ["https://idbroker.webex.com/idb/Consumer/metaAlias/org/sp"]))
    paths["stale.xml"] = folder / "stale.xml"   # validUntil passed, certificate fine
    paths["stale.xml"].write_bytes(make_sp_metadata("https://sp.example.com", [ok_cert], valid_until=utc(2025, 5, 1)))
    paths["nocert.xml"] = folder / "nocert.xml"
    paths["nocert.xml"].write_bytes(make_sp_metadata("https://sp.example.com", acs=["https://sp.example.com/acs"]))
    paths["nouse.xml"] = folder / "nouse.xml"
    paths["nouse.xml"].write_bytes(make_sp_metadata("https://sp.example.com", both_use_certs=[ok_cert]))
    paths["broken.xml"] = folder / "broken.xml"
    paths["broken.xml"].write_bytes(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    return {name: str(path) for name, path in paths.items()}


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run_check(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name, code", [
    ("ok.pem", 0), ("warning.pem", 1), ("critical.pem", 2), ("expired.pem", 2), ("future.pem", 2), ("broken.xml", 3),
    ("stale.xml", 1), ("nocert.xml", 3),
])
def test_exit_code_per_status(files, name, code):
    assert run("--now", NOW, files[name])[0] == code


def test_worst_input_wins_and_unreadable_wins_over_all(files):
    assert run("--now", NOW, files["ok.pem"], files["warning.pem"])[0] == 1
    assert run("--now", NOW, files["warning.pem"], files["expired.pem"])[0] == 2
    assert run("--now", NOW, files["expired.pem"], files["broken.xml"], files["ok.pem"])[0] == 3
    assert run("--now", NOW, files["ok.pem"], "/no/such/file.pem")[0] == 3


def test_json_contract(files):
    code, out, _ = run("--json", "--now", NOW, files["sp.xml"], files["broken.xml"])
    assert code == 3
    data = json.loads(out)
    assert list(data) == ["sources"]
    good, bad = data["sources"]
    assert list(good) == ["source", "error", "certificates"]
    assert good["source"] == files["sp.xml"] and good["error"] is None
    assert [list(c) for c in good["certificates"]] == [JSON_KEYS, JSON_KEYS]
    first = good["certificates"][0]
    assert (first["entity_id"], first["role"], first["use"]) == ("https://idbroker.webex.com/org", "sp", "signing")
    assert (first["not_after"], first["days_left"], first["status"]) == ("2027-01-01T00:00:00Z", 579, "ok")
    assert first["key"] == "RSA 2048" and first["signature_algorithm"] == "sha256WithRSAEncryption"
    assert bad["certificates"] == [] and "DTD" in bad["error"] and "\n" not in bad["error"]


def test_json_plain_certificate_has_null_role_and_use(files):
    [cert] = json.loads(run("--json", "--now", NOW, files["ok.pem"])[1])["sources"][0]["certificates"]
    assert cert["role"] is None and cert["use"] is None and cert["entity_id"] is None


def test_thresholds_from_the_command_line(files):
    assert run("--now", NOW, "--warning-days", "30", files["warning.pem"])[0] == 0
    assert run("--now", NOW, "--critical-days", "50", files["warning.pem"])[0] == 2


def test_table_is_aligned_and_readable(files):
    code, out, _ = run("--now", NOW, files["ok.pem"], files["expired.pem"], files["broken.xml"])
    assert code == 3
    lines = out.splitlines()
    headers = [line for line in lines if line.strip().startswith("STATUS")]
    rows = [line for line in lines if line.strip().startswith(("ok ", "expired "))]
    assert len(headers) == 2 and len(rows) == 2
    assert all(row.index("CN=") == header.index("SUBJECT") for row, header in zip(rows, headers, strict=True))
    assert any("UNREADABLE" in line and "broken.xml" in line for line in lines)


def test_naive_now_is_utc_and_offsets_are_converted(files):
    naive = json.loads(run("--json", "--now", "2025-06-01T00:00:00", files["ok.pem"])[1])
    offset = json.loads(run("--json", "--now", "2025-06-01T02:00:00+02:00", files["ok.pem"])[1])
    assert naive == offset


@pytest.mark.parametrize("argv", [[], ["--now", "tomorrow", "x.pem"], ["--warning-days", "-1", "x.pem"]])
def test_usage_errors_exit_3_with_message_on_stderr(argv):
    code, out, err = run(*argv)
    assert code == 3 and out == "" and "bot.py check" in err


def test_help_exits_0(capsys):
    code, out, _ = run("--help")
    assert code == 0 and "FILE_OR_URL" in out
    assert capsys.readouterr().out == ""


def test_document_without_certificate_is_unknown_and_says_so(files):
    code, out, _ = run("--now", NOW, files["nocert.xml"], files["ok.pem"])
    assert code == 3
    assert "UNKNOWN: no certificate in this document, nothing to check" in out


def test_key_descriptor_without_use_is_shown_as_such(files):
    code, out, _ = run("--now", NOW, files["nouse.xml"])
    assert code == 0 and "signing+encryption (no use given)" in out
    [cert] = json.loads(run("--json", "--now", NOW, files["nouse.xml"])[1])["sources"][0]["certificates"]
    assert (cert["role"], cert["use"]) == ("sp", None)


def test_expired_metadata_is_at_least_a_warning(files):
    code, out, _ = run("--now", NOW, files["stale.xml"])
    assert code == 1 and "validUntil date has passed" in out
