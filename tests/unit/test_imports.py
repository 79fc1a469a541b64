"""Each entry point loads only what it uses (issue 12: `check` and `--help` start within 3x a bare
`import cryptography.x509, defusedxml.ElementTree`; bench/cold_start.py times it). The lists below are the
modules a fresh process imports; no timing here."""

import json
import subprocess
import sys

from tests.support.processes import ROOT

FIXTURE = ROOT.parent / "shared" / "fixtures" / "metadata" / "adfs_v2_metadata_signed_wsfed_roledescriptors.xml"
# Imported by the interpreter or the environment whatever runs: setuptools' shim, the time zone database.
AMBIENT = {"_distutils_hack", "_sysconfigdata__linux_x86_64-linux-gnu", "tzdata", "__main__"}
HEAVY = {"webexpythonsdk", "msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "azure", "httpx",
         "apscheduler", "jsonschema", "requests", "websockets", "psycopg", "prometheus_client", "handlers", "cards",
         "fakes", "yaml"}

RUN_AND_LIST = """
import atexit, json, runpy, sys
atexit.register(lambda: sys.__stderr__.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
sys.argv = ["bot.py", *sys.argv[1:]]
runpy.run_path("bot.py", run_name="__main__")
"""


def modules_of(*code_and_args: str) -> tuple[set[str], set[str]]:
    """(third-party top-level packages, rollover modules) a fresh interpreter imported."""
    run = subprocess.run([sys.executable, "-c", *code_and_args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    line = next(line for line in run.stderr.splitlines() if line.startswith("MODULES "))
    modules = json.loads(line.removeprefix("MODULES "))
    packages = {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - AMBIENT
    return packages - {"rollover", "bot"}, {m for m in modules if m.split(".")[0] == "rollover"}


def test_check_loads_the_certificate_code_and_nothing_of_the_bot():
    packages, rollover = modules_of(RUN_AND_LIST, "check", str(FIXTURE))
    assert packages <= {"cryptography", "defusedxml", "_cffi_backend", "_openssl"}
    assert rollover == {"rollover", "rollover.cli", "rollover.errors", "rollover.logging_setup", "rollover.settings",
                        "rollover.certificates", "rollover.certificates.check_cli",
                        "rollover.certificates.health", "rollover.certificates.parsing"}


def test_help_loads_the_command_line_only():
    packages, rollover = modules_of(RUN_AND_LIST, "--help")
    assert packages == set()
    assert rollover == {"rollover", "rollover.cli", "rollover.errors", "rollover.logging_setup", "rollover.settings"}


def test_the_web_process_loads_flask_and_the_store_but_no_worker_code():
    packages, rollover = modules_of("""
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
import tempfile, bot
bot.create_app({"database_path": tempfile.mkdtemp() + "/web.sqlite3", "webhook_secret": "s"})
""")
    assert "flask" in packages and not packages & HEAVY
    assert not {m for m in rollover if m.startswith(("rollover.integrations", "rollover.rotation",
                                                     "rollover.reminders", "rollover.certificates"))}
    assert "rollover.pipeline.worker" not in rollover and "rollover.pipeline.dispatcher" not in rollover
