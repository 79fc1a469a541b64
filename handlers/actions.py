"""Every card action id, shared by the cards that put a button on a card and the handlers that answer it.

A button's ``action`` data field names its handler; writing the id twice as a string is how a button
silently stops working, so both sides import it from here.
"""

RUN_COMMAND = "run-command"                  # run a chat command as if it had been typed (help, explain, status)
WATCH_APP = "watch-app"

REMINDER_SNOOZE = "reminder-snooze"
REMINDER_ACKNOWLEDGE = "reminder-acknowledge"

ROTATION_START = "rotation-start"
ROTATION_APPROVE = "rotation-approve"
ROTATION_REJECT = "rotation-reject"
ROTATION_CANCEL = "rotation-cancel"
ROTATION_WINDOW = "rotation-window"
ROTATION_WINDOW_NOW = "rotation-window-now"
ROTATION_SIGNED_IN = "rotation-signed-in"
ROTATION_ROLLBACK = "rotation-rollback"
ROTATION_VERIFY = "rotation-verify"
ROTATION_WEBEX_ACTIVATED = "rotation-webex-activated"
ROTATION_CLEANUP = "rotation-cleanup"

# The rotation steps' buttons, by the name the core's machine declaration gives them (rollover/rotation/machine.py).
ROTATION_BUTTONS = {
    "approve": ROTATION_APPROVE,
    "reject": ROTATION_REJECT,
    "cancel": ROTATION_CANCEL,
    "window": ROTATION_WINDOW,
    "window-now": ROTATION_WINDOW_NOW,
    "signed-in": ROTATION_SIGNED_IN,
    "rollback": ROTATION_ROLLBACK,
    "verify": ROTATION_VERIFY,
    "webex-activated": ROTATION_WEBEX_ACTIVATED,
    "cleanup": ROTATION_CLEANUP,
}
