"""Errors a user can cause and fix; the CLI prints them as one line, never a traceback."""


class UserError(Exception):
    """Bad arguments, config or paths: exit code 2 with the message on stderr."""


class WarehouseBusy(UserError):
    """Another process holds the warehouse for writing longer than we were willing to wait."""


class WarehouseMissing(UserError):
    """A command that only reads found no warehouse: nothing was ingested there yet."""
