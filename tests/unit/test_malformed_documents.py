"""Every malformed document ends in DocumentError with a plain, specific reason (issue 11, item 5).

The corpus (tests/unit/corpus, built by tests/unit/malformed.py) holds one minimal reproducer per
input that used to escape as LookupError, OverflowError, InvalidVersion, UnsupportedAlgorithm,
ValueError or TypeError. ``bot.py check`` reports each of them with exit 3 and goes on with the
other inputs of the command line.
"""

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollover.certificates import check_cli
from rollover.certificates.check_cli import run_check
from rollover.certificates.health import assess_document
from rollover.certificates.parsing import DocumentError, parse_document
from tests.unit.malformed import CORPUS, READABLE, REPRODUCERS

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def refusal(data: bytes, source: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse_document(data, source=source)
    return caught.value


def assert_plain(error: DocumentError, source: str) -> None:
    message = str(error)
    assert message.startswith(f"Cannot read {source}: ") and message.endswith(".")
    assert "\n" not in message and len(message) < 300
    for debug_text in ("ParseError {", "Traceback", "codecs.decode", "InvalidVersion", "<class"):
        assert debug_text not in message


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_each_corpus_file_is_refused_with_its_reason(name):
    _, code, reason = REPRODUCERS[name]
    error = refusal((CORPUS / name).read_bytes(), name)
    assert error.code == code
    assert reason in str(error)
    assert_plain(error, name)


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_a_freshly_built_reproducer_is_refused_the_same_way(name):
    """The builder is the corpus's source of truth: new keys and serials, same refusal."""
    build, code, reason = REPRODUCERS[name]
    error = refusal(build(), name)
    assert (error.code, reason in str(error)) == (code, True)


@pytest.mark.parametrize("name", sorted(READABLE))
def test_look_alikes_that_are_valid_are_still_read_and_assessed(name):
    document = parse_document((CORPUS / name).read_bytes(), source=name)
    [report] = assess_document(document, NOW)
    assert report.status == "ok" and report.days_left > 0


def test_the_corpus_directory_holds_exactly_the_listed_files():
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted([*REPRODUCERS, *READABLE])


@pytest.mark.parametrize("wrapping", ["der", "base64", "utf16"])
def test_malformed_certificates_are_refused_in_every_wrapping(wrapping):
    """DER, bare base64 and UTF-16 text reach the same check as PEM."""
    import base64
    for name in ("cert_version_6.pem", "cert_year_0.pem", "cert_bitstring_common_name.pem",
                 "cert_unknown_key_oid.pem", "cert_ec_point_off_curve.pem"):
        pem = (CORPUS / name).read_bytes()
        der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
        data = {"der": der, "base64": base64.b64encode(der),
                "utf16": pem.decode("ascii").encode("utf-16")}[wrapping]
        error = refusal(data, name)
        assert error.code == "bad-certificate", (name, wrapping)
        assert REPRODUCERS[name][2] in str(error)


def test_a_pem_file_names_which_of_its_certificates_is_bad():
    good = (CORPUS / "good_certificate.pem").read_bytes()
    error = refusal(good + (CORPUS / "cert_year_0.pem").read_bytes(), "chain.pem")
    assert "chain.pem: certificate 2 is not a valid X.509 certificate" in str(error)


def test_a_huge_attribute_value_is_cut_in_the_message():
    huge = "9" * 1_000_000
    for data in (
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="e" validUntil="{huge}"/>',
        f"<{'x' * 1_000_000}/>",
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{huge}">'
        f'<md:IDPSSODescriptor><md:KeyDescriptor use="{huge}"/></md:IDPSSODescriptor></md:EntityDescriptor>',
    ):
        error = refusal(data.encode(), "huge.xml")
        assert_plain(error, "huge.xml")


# ---------------------------------------------------------------------------------------------
# bot.py check


def check(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = run_check(["--json", "--now", "2025-06-01T00:00:00Z", *argv], out, err)
    return code, {s["source"]: s for s in json.loads(out.getvalue())["sources"]}, err.getvalue()


def test_check_reports_every_input_and_exits_3_when_one_is_malformed():
    good = str(CORPUS / "good_certificate.pem")
    bad = [str(CORPUS / name) for name in sorted(REPRODUCERS)]
    code, sources, err = check(good, *bad, str(CORPUS / "good_metadata.xml"))
    assert code == 3 and err == ""
    assert sources[good]["error"] is None and sources[good]["certificates"][0]["status"] == "ok"
    assert sources[str(CORPUS / "good_metadata.xml")]["certificates"][0]["subject"] == "CN=good-idp"
    for path in bad:
        assert sources[path]["certificates"] == []
        assert sources[path]["error"].startswith(f"Cannot read {path}: ")
        assert REPRODUCERS[Path(path).name][2] in sources[path]["error"]


def test_a_bug_in_one_input_is_reported_as_that_inputs_error_and_the_rest_go_on(monkeypatch, caplog):
    real = check_cli.assess_document

    def assess_or_crash(document, now, **options):
        if document.source.endswith("good_metadata.xml"):
            raise RuntimeError("a bug")
        return real(document, now, **options)

    monkeypatch.setattr(check_cli, "assess_document", assess_or_crash)
    good, crashing = str(CORPUS / "good_certificate.pem"), str(CORPUS / "good_metadata.xml")
    code, sources, _ = check(crashing, good)
    assert code == 3 and sources[good]["certificates"][0]["subject"] == "CN=good"
    assert sources[crashing]["error"].startswith(f"Cannot check {crashing}: an internal error occurred (incident ")
    incident = sources[crashing]["error"].rsplit(" ", 1)[1].strip(").")
    [record] = [r for r in caplog.records if incident in r.getMessage()]
    assert record.exc_info and "a bug" in str(record.exc_info[1])


def test_bot_py_check_prints_no_traceback_for_the_corpus():
    """The real command line, in its own process: exit 3, every file reported, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOVER_")}
    files = sorted(str(p) for p in CORPUS.iterdir())
    result = subprocess.run([sys.executable, "bot.py", "check", "--now", "2025-06-01T00:00:00Z", *files],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stdout.count("UNREADABLE: Cannot read") == len(REPRODUCERS)
    for path in files:
        assert f"\n{path}\n" in result.stdout
