"""The two kinds of failure the bot knows.

A ``UserError`` is an expected problem (bad input, a refused permission, an
unreadable file): its message is written for the person in the space and is
sent to them as is. Anything else is a bug: the dispatcher logs it with its
traceback and answers with a short apology and an incident id.
"""


class UserError(Exception):
    """An expected problem; ``str(error)`` is a complete sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
