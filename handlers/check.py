"""check <url>, and files dropped into the space: read, judge, track, answer with a status card."""

from cards.certificates import reading_card, reading_text
from cards.explain import diagnosis_card, diagnosis_text
from rollover.errors import UserError
from rollover.integrations.entra_files import looks_like_json
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command, file_handler
from rollover.tracking import document_diagnosis, room_diagnosis, track_app_file, track_document, track_url

MAX_FILES_PER_MESSAGE = 1   # Webex allows one file per message


@command("check", usage="check <metadata or certificate URL>")
def check_url(ctx: Context) -> None:
    """Read a SAML metadata or certificate URL, show its certificates and track them here."""
    url = ctx.args.strip().strip("<>")
    if not url:
        raise UserError("Give me the URL to read, e.g. `check https://login.microsoftonline.com/"
                        "<tenant>/federationmetadata/2007-06/federationmetadata.xml?appid=<app id>`. "
                        "Or drop the file into this space.")
    reading = track_url(ctx.services, room_id=ctx.room_id, url=url, added_by=ctx.person_email)
    _answer(ctx, reading)


@file_handler
def check_dropped_file(ctx: Context) -> None:
    """Read a metadata or certificate file dropped into the space."""
    for url in ctx.files[:MAX_FILES_PER_MESSAGE]:
        download = ctx.services.webex.download(url, ctx.config.max_document_bytes)
        if looks_like_json(download.data):   # the Webex app as `az ad app show` / `az ad sp show` print it
            _answer_app_file(ctx, download.filename, download.data)
            continue
        reading = track_document(ctx.services, room_id=ctx.room_id, kind="file", location=download.filename,
                                 added_by=ctx.person_email, data=download.data)
        _answer(ctx, reading)


def _answer(ctx: Context, reading) -> None:
    # The verdict speaks of this document's trust only (the space may also track the other one).
    diagnosis = document_diagnosis(ctx.services, ctx.room_id, reading.document)
    label = reading.source.label
    ctx.reply(reading_text(label, reading.reports, diagnosis),
              card=reading_card(label, reading.reports, diagnosis))


def _answer_app_file(ctx: Context, name: str, data: bytes) -> None:
    app_file, facts = track_app_file(ctx.services, room_id=ctx.room_id, name=name, data=data,
                                     added_by=ctx.person_email)
    diagnosis = room_diagnosis(ctx.services, ctx.room_id)
    read = (f"Read {name}: the {app_file.describes} (appId {app_file.app_id}). This space's answer now uses "
            f"{facts.display_name}'s settings.")
    ctx.reply(f"{read}\n{diagnosis_text(diagnosis)}", card=diagnosis_card(diagnosis))
