"""Errors a user sees as one line, each with the exit code scripts can rely on.

Every error raised on purpose by agencystack derives from :class:`AgencyStackError`; the CLI prints
``error: <message>`` on stderr (or, under ``--json``, one failure document on stdout: docs/cli-json.md) and exits
with the class's ``exit_code``. Each class names its ``kind`` (the failure document's ``error.kind``); an error may
carry a ``hint``: what to do about it. Anything else is a bug: exit 1, kind ``unexpected``, one redacted line (the
traceback only with ``-v``).
"""

from __future__ import annotations


class AgencyStackError(Exception):
    """Base class: a failure explained in one line (``hint``: what to do about it, when the message does not say)."""

    exit_code = 1
    kind = "error"

    def __init__(self, *args: object, hint: str | None = None):
        super().__init__(*args)
        self.hint = hint


class UsageError(AgencyStackError):
    """Bad input from the user (a flag, an argument, a settings value). Nothing was changed."""

    exit_code = 2
    kind = "usage"


class EngineUnreachable(AgencyStackError):
    """The container engine did not answer at the address tried."""

    exit_code = 3
    kind = "engine_unreachable"


class LockTimeout(AgencyStackError):
    """Another lifecycle call holds the (client, component) lock."""

    exit_code = 4
    kind = "lock_busy"


class ComponentError(AgencyStackError):
    """A component's lifecycle action failed (the message says which service and why)."""

    exit_code = 1
    kind = "component_failed"


class BackupError(AgencyStackError):
    """A backup archive is missing, damaged, or does not fit the target."""

    exit_code = 5
    kind = "backup"


class Interrupted(AgencyStackError):
    """The operator interrupted the command (Ctrl-C, or declined a confirmation)."""

    exit_code = 130
    kind = "interrupted"


#: every exit code the CLI returns, with what it means (README's table and docs/cli-json.md list the same)
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "a component failed (or a result reports a failure: status, doctor, a bulk install), or an unexpected bug",
    2: "bad input: nothing was changed",
    3: "the container engine is unreachable",
    4: "another lifecycle call holds the lock",
    5: "a backup archive is missing, damaged or does not fit",
    130: "interrupted",
}

#: every failure document's ``error.kind``, with its exit code (``unexpected``: a bug, not an AgencyStackError)
KINDS: dict[str, int] = {cls.kind: cls.exit_code for cls in (AgencyStackError, UsageError, EngineUnreachable,
                                                              LockTimeout, ComponentError, BackupError, Interrupted)}
KINDS["unexpected"] = 1
