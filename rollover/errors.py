"""The kinds of failure the bot knows.

A ``UserError`` is an expected problem (bad input, a refused permission, an
unreadable file): its message is written for the person in the space and is
sent to them as is. A ``Retryable`` is a "try again later": a remote service
rate limiting or failing (Webex 429/5xx, Graph throttled or unavailable), or a
rotation another thread holds for a moment. The worker retries the event with
backoff; a person is answered with its sentence only when the retries are used
up. Anything else is a bug: the dispatcher logs it with its traceback and
answers with a short apology and an incident id.
"""


class UserError(Exception):
    """An expected problem; ``str(error)`` is a complete sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Retryable(Exception):
    """Not now, maybe later; ``str(error)`` is a complete sentence without secrets, ``retry_after`` the
    seconds the other side asked to wait (None: our own backoff decides)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
