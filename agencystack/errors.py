"""Errors a user sees as one line, each with the exit code scripts can rely on.

Every error raised on purpose by agencystack derives from :class:`AgencyStackError`; the CLI prints
``error: <message>`` on stderr and exits with the class's ``exit_code``. Anything else is a bug and gets a
traceback (with secrets redacted).
"""

from __future__ import annotations


class AgencyStackError(Exception):
    """Base class: a failure explained in one line."""

    exit_code = 1


class UsageError(AgencyStackError):
    """Bad input from the user (a flag, an argument, a settings value). Nothing was changed."""

    exit_code = 2


class EngineUnreachable(AgencyStackError):
    """The container engine did not answer at the address tried."""

    exit_code = 3


class LockTimeout(AgencyStackError):
    """Another lifecycle call holds the (client, component) lock."""

    exit_code = 4


class ComponentError(AgencyStackError):
    """A component's lifecycle action failed (the message says which service and why)."""

    exit_code = 1


class BackupError(AgencyStackError):
    """A backup archive is missing, damaged, or does not fit the target."""

    exit_code = 5
