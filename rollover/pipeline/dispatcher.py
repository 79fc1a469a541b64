"""Framework-free core: turn one recorded webhook event into a handler call and its replies.

Nothing here knows Flask. The worker hands over an ``Event``; the dispatcher
fetches what the webhook only points at (the message, or the card action),
checks who is asking, finds the handler on the registry and runs it with a
``Context`` through which every reply is posted.

Replies go through the outbox: the n-th post of an event is recorded with its
message id, so when an event is retried (Webex 429/5xx halfway through) the
posts that already went out are not sent again.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from rollover.errors import Retryable, UserError
from rollover.integrations.webex_client import Message, WebexError, WebexUnavailable
from rollover.pipeline.access import REFUSAL, refusal_reason
from rollover.pipeline.outbox import Poster
from rollover.services import Services
from rollover.settings import Config
from rollover.storage import Event, Storage

log = logging.getLogger(__name__)

BOT_EMAIL_DOMAINS = ("webex.bot", "sparkbot.io")
ACTION_KEY = "action"             # the card submit data field that names the handler


@dataclass
class Context:
    """What a handler gets: who asked, where, with what, and how to answer."""

    services: Services
    event_key: str
    room_id: str
    room_type: str
    person_id: str
    person_email: str
    text: str = ""                           # the command line, mention removed
    args: str = ""                           # the text after the command word
    files: tuple[str, ...] = ()
    message_id: str | None = None            # the message that asked (None for card actions)
    inputs: dict[str, Any] = field(default_factory=dict)   # card submit data + input values
    card_message_id: str | None = None       # the card that was clicked
    poster: Poster = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.poster = Poster(self.services.storage, self.services.webex, self.event_key, self.room_id)

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def storage(self) -> Storage:
        return self.services.storage

    def now(self) -> datetime:
        return self.services.clock()

    def reply(self, text: str | None = None, *, markdown: str | None = None, card: Any = None,
              file: tuple[str, bytes] | None = None, parent_id: str | None = None,
              to_person_id: str | None = None) -> str:
        """Post to the room (or privately to ``to_person_id``); once per position, even on retries."""
        return self.poster.reply(text, markdown=markdown, card=card, file=file, parent_id=parent_id,
                                 to_person_id=to_person_id)

    def delete_message(self, message_id: str) -> bool:
        """Delete a message; False when Webex refused (the caller then replies in a thread instead)."""
        return self.poster.delete_message(message_id)


# --- reading what the person typed ---------------------------------------------------------------

_MENTION = re.compile(r"<spark-mention\b[^>]*>.*?</spark-mention>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
# Linear: one character class, anchored. "/help", "🔐 status", "? " and "-- explain" all start with a command.
_LEADING_DECORATION = re.compile(r"^[^\w]+")
_TRAILING_PUNCTUATION = "!?.,:;"
_CODE_SPAN = re.compile(r"`([^`\n]*)`")   # linear: no nesting, stops at the next backtick


def command_text(message: Message, bot_id: str, bot_name: str) -> str:
    """The message text with every @mention removed (the bot's and other people's), whitespace folded, and
    the decoration people type around a command word dropped: a leading ``/``, emoji or punctuation.

    In group spaces Webex puts mentions in ``html`` as <spark-mention> elements and starts ``text``
    with the bot's display name; direct spaces have no mention.
    """
    text = message.text
    if message.room_type == "group":
        if message.html and "spark-mention" in message.html:
            text = _html_without_mentions(message.html)
        elif bot_name and text.lower().startswith(bot_name.lower()):
            text = text[len(bot_name):]
    return _LEADING_DECORATION.sub("", " ".join(text.split()))


def _html_without_mentions(html: str) -> str:
    return html_lib.unescape(_TAG.sub(" ", _MENTION.sub(" ", html)))


def command_word(word: str) -> str:
    """``help!``, ``status?`` and ``explain.`` are the commands themselves."""
    return word.rstrip(_TRAILING_PUNCTUATION)


def is_bot_email(email: str) -> bool:
    return email.lower().rsplit("@", 1)[-1] in BOT_EMAIL_DOMAINS


# --- the dispatcher -----------------------------------------------------------------------------------

class Dispatcher:
    def __init__(self, services: Services):
        self.services = services

    def handle(self, event: Event, *, last_attempt: bool = False) -> None:
        """Process one event. Raises ``Retryable`` when it should be retried later; on the ``last_attempt``
        a person is answered with the failure's sentence instead (unless Webex itself is what fails)."""
        if event.resource == "messages":
            self._handle_message(event, last_attempt)
        elif event.resource == "attachmentActions":
            self._handle_card_action(event, last_attempt)
        else:
            log.info("ignoring %s/%s event", event.resource, event.event)

    # --- messages ---------------------------------------------------------------------------------

    def _handle_message(self, event: Event, last_attempt: bool) -> None:
        webex, config = self.services.webex, self.services.config
        message = _fetched(webex.get_message, event, "message")
        if message is None:
            return
        me = webex.me()
        if message.person_id == me.id:
            return   # our own post: answering it would loop
        if is_bot_email(message.person_email) and not config.allow_bots:
            log.info("ignoring a message from bot %s", message.person_email)
            return
        text = command_text(message, me.id, me.display_name)
        word, _, args = text.partition(" ")
        word = command_word(word)
        ctx = Context(self.services, event.key, message.room_id, message.room_type, message.person_id,
                      message.person_email, text=text, args=args.strip(), files=message.files,
                      message_id=message.id)
        refusal = refusal_reason(config, message.person_email, message.room_id)
        if refusal:
            log.info("refused %s in room %s: %s", message.person_email, message.room_id, refusal)
            ctx.reply(REFUSAL)
            return
        self._run(ctx, self._choose_handler(ctx, word), last_attempt)

    def _choose_handler(self, ctx: Context, word: str) -> Callable[[Context], None]:
        registry = self.services.registry
        spec = registry.find_command(word) if word else None
        if spec is not None:
            return spec.handler
        if ctx.files and registry.file_handler is not None:
            return registry.file_handler
        if not word:
            return registry.commands["help"].handler
        return lambda context: _unknown_command(context, word, registry.suggest(word))

    # --- card actions -----------------------------------------------------------------------------

    def _handle_card_action(self, event: Event, last_attempt: bool) -> None:
        webex, config = self.services.webex, self.services.config
        action = _fetched(webex.get_attachment_action, event, "card action")
        if action is None:
            return
        # Authorize the person who clicked, as Webex reports them for this action, not as the
        # webhook body claims: anyone in a room can click any card in it.
        person = webex.get_person(action.person_id)
        ctx = Context(self.services, event.key, action.room_id, "", action.person_id, person.email,
                      inputs=dict(action.inputs), card_message_id=action.message_id)
        if person.id == webex.me().id:
            return
        refusal = refusal_reason(config, person.email, action.room_id)
        if refusal:
            log.info("refused card action by %s in room %s: %s", person.email, action.room_id, refusal)
            ctx.reply(REFUSAL, to_person_id=person.id)   # privately: the room learns nothing
            return
        spec = self.services.registry.actions.get(str(action.inputs.get(ACTION_KEY, "")))
        if spec is None:
            ctx.reply("That button belongs to an older version of this card; please ask again.",
                      to_person_id=person.id)
            return
        self._run(ctx, spec.handler, last_attempt)

    # --- running a handler -----------------------------------------------------------------------

    def _run(self, ctx: Context, handler: Callable[[Context], None], last_attempt: bool = False) -> None:
        try:
            handler(ctx)
        except UserError as error:
            _answer_problem(ctx, error)
        except WebexUnavailable:
            raise                   # nothing can be answered while Webex fails: the worker retries
        except Retryable as error:
            if not last_attempt:
                raise               # the worker runs the event again later
            _answer_problem(ctx, error)
        except Exception:
            incident = secrets.token_hex(4)
            log.exception("incident %s: handler %s failed on event %s",
                          incident, getattr(handler, "__name__", handler), ctx.event_key)
            ctx.reply(markdown=f"Sorry, something went wrong on my side (incident `{incident}`). "
                               "The operators can find the details in the bot's log.")


def _answer_problem(ctx: Context, error: Exception) -> None:
    # A refused click is the clicker's business; a refused command is answered where it was asked.
    ctx.reply(sentence_text(str(error)), to_person_id=ctx.person_id if ctx.card_message_id else None)


def _fetched(fetch: Callable[[str], Any], event: Event, what: str) -> Any:
    """What the event points at, or None when Webex says it is gone for good (the event is dropped);
    a WebexUnavailable goes up: the worker tries again later."""
    try:
        return fetch(event.data_id)
    except WebexUnavailable:
        raise
    except WebexError as error:
        log.warning("%s of event %s could not be read, dropping it: %s", what, event.key, error)
        return None


def sentence_text(sentence: str) -> str:
    """An expected problem's sentence as the plain text it is sent as: `code` spans become “quoted”.

    Plain text on purpose: these sentences quote what people typed and what documents, Entra and Webex
    name (app names, room titles, file names), which as Markdown could become links, mentions or formatting."""
    return _CODE_SPAN.sub(r"“\1”", sentence)


def _unknown_command(ctx: Context, word: str, suggestion: str | None) -> None:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    # Echo only word characters: typed text must not become a link, a mention or formatting.
    shown = re.sub(r"[^\w.-]", "", word)[:40] or "that"
    ctx.reply(markdown=f"I don't know the command `{shown}`.{hint} Type `help` to see what I can do.")
