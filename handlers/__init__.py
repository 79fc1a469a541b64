"""Chat commands and card actions, one module each, collected on an explicit registry."""

from handlers import about, apps, check, explain, forget, help as help_command, status
from handlers import remind
from handlers import audit as audit_command, rotations
from handlers.registry import Registry

# Every module whose handlers the bot offers. Adding a command = adding its module here.
HANDLER_MODULES = (
    help_command,
    about,
    status,
    explain,
    check,
    forget,
    apps,
    remind,
    rotations,
    audit_command,
)


def build_registry() -> Registry:
    registry = Registry()
    for module in HANDLER_MODULES:
        registry.add_module(module)
    return registry
