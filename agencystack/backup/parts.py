"""The core's default ``backup`` and ``restore``: every part the component's stack declares in ``Stack.backups``.

Backup (the component runs; nothing stops):

* :class:`~agencystack.stack.PostgresDump` -- ``pg_dump --no-owner`` inside the database's own container, its stdout
  streamed through the driver's exec into the archive: one MVCC snapshot, consistent while the application writes.
  The password goes in the exec environment (``PGPASSWORD``), never in an argument. One database per part;
  cluster-wide objects (other roles, tablespaces) are not included: the part's user is the image's
  ``POSTGRES_USER``, which exists in every instance of the stack.
* :class:`~agencystack.stack.VolumeArchive` -- a tar of the volume, streamed from the engine (for file stores:
  uploads, recordings; files written during the copy may be caught half-way, as with any file copy).
* :class:`~agencystack.stack.CommandDump` -- the service's own ``dump`` command's stdout (``env_keys`` passed in the
  exec environment).
* :class:`~agencystack.stack.EnvFile` -- the component's .env as it is on disk (its secrets: without them restored
  data may be unreadable).

Restore (each part's stream checks its hash and size as it is read; every stored byte of the archive is hashed
against its manifest by a second reader beside the load, see :func:`agencystack.backup.operations.restore`, and
that check has passed before anything live changes):

1. check, before any change: each archive part is declared by the stack with the same kind; the .env the restore
   would write loads as valid settings;
1a. the one pass: when every part is a Postgres or settings part and each database's server runs with room for a
   second copy (:data:`STAGING_ROOM`), each dump is loaded into a scratch database beside the live one
   (``<db>_agencystack_restore``, dropped first if a crashed restore left it) while the component keeps running;
   a part that fails or whose stream is damaged drops its scratch database and nothing live has changed. After the
   stop (step 2) and the .env (step 3), each live database is dropped and its scratch one renamed into its place
   (step 5 then has nothing to load): the component is down for the swap and its start only. Otherwise (a volume
   or command part, a stopped or purged component, no room) the steps below restore in place;
2. stop the component, but for the services the dumps are loaded through (and what they depend on) when no volume
   is restored: a database is not restarted only to be started again in step 5;
3. the .env: written back as it was for the same client. Restoring into ANOTHER client id clones: every setting
   carries over (secrets included: data is encrypted or signed with them) EXCEPT the client's own identity --
   settings named ``domain`` or ``*_domain`` (the clone keeps its own, or ``--domain``, or the default) -- and the
   database passwords named by Postgres parts (``password_key``): the clone keeps its own, or gets a new one, so
   two clients never share database credentials;
4. volumes: created if missing, emptied, then filled from their tar;
5. databases (PostgreSQL 13 or later: ``DROP DATABASE ... WITH (FORCE)``): only the services the dumps need are
   started (health-gated); each database is dropped and created
   again (owned by the part's user, from template0), the owner's password is set to the .env's value (read in
   psql from the environment, never an argument), then the dump is loaded with ``psql --single-transaction -v
   ON_ERROR_STOP=1`` as the owner; command parts get their ``load`` command with the part on stdin;
6. ``context.deploy()`` starts everything, gated on health.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agencystack.errors import AgencyStackError, BackupError, UsageError

if TYPE_CHECKING:
    from agencystack.backup.archive import ArchiveReader, ArchiveWriter
    from agencystack.context import LifecycleContext
    from agencystack.results import Outcome

KIND = {"PostgresDump": "postgres", "VolumeArchive": "volume", "CommandDump": "command", "EnvFile": "env"}
PSQL_OPTIONS = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password"]


class StderrTail:
    """A write-only sink keeping the last few KB a command wrote on stderr (for a one-line error)."""

    def __init__(self, limit: int = 4096):
        self._buffer = bytearray()
        self._limit = limit

    def write(self, data: bytes) -> int:
        self._buffer += data
        del self._buffer[:-self._limit]
        return len(data)

    def flush(self) -> None:
        pass

    def last_line(self) -> str:
        lines = [line.strip() for line in self._buffer.decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        return (errors or lines or ["no message"])[-1][:400]


class Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _quoted_identifier(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _run(context: LifecycleContext, deployment: Any, service: str, command: list[str], what: str, *,
         env: dict[str, str] | None = None, stdout: Any = None, stdin: Any = None) -> None:
    tail = StderrTail()
    code = context.engine.exec(deployment, service, command, env=env or None, stdout=stdout or Discard(),
                               stdin=stdin, stderr=tail)
    if code != 0:
        raise BackupError(context.redactor.text(f"{what}: {command[0]} exited with {code}: {tail.last_line()}"))


def _secret_env(context: LifecycleContext, keys: list[str]) -> dict[str, str]:
    env = context.env()
    missing = [k for k in keys if k not in env]
    if missing:
        raise UsageError(f"{context.component.name} has no setting(s) {', '.join(missing)} (named by a backup part)")
    return {k: env[k] for k in keys}


# ================================================================================================================
# backup
# ================================================================================================================
def write_parts(context: LifecycleContext, archive: ArchiveWriter) -> Outcome:
    """Write every part the stack declares into ``archive``."""
    from agencystack.results import Outcome

    stack = context.stack()
    if not stack.backups:
        raise BackupError(f"{context.component.name} declares nothing to back up (Stack.backups is empty)")
    deployment = context.deployment()
    for part in stack.backups:
        kind = KIND[type(part).__name__]
        spec = part.model_dump()
        context.progress(part.name, f"backing up ({kind})")
        if kind == "postgres":
            with archive.part(part.name, kind, spec) as out:
                _run(context, deployment, part.service,
                     ["pg_dump", "--username", part.user, "--dbname", part.database, "--no-owner", "--no-password"],
                     f"part {part.name}", env=_pg_env(context, part), stdout=out)
        elif kind == "volume":
            with archive.part(part.name, kind, spec) as out:
                context.engine.volume_export(deployment, part.volume, out)
        elif kind == "command":
            with archive.part(part.name, kind, spec) as out:
                _run(context, deployment, part.service, list(part.dump), f"part {part.name}",
                     env=_secret_env(context, part.env_keys), stdout=out)
        else:
            if not context.dir.env_file.is_file():
                raise BackupError(f"{context.dir.env_file} does not exist: is {context.component.name} installed "
                                  f"for {context.client}?")
            archive.add_bytes(part.name, context.dir.env_file.read_bytes(), kind, spec)
        context.progress(part.name, "done")
    names = [p.name for p in stack.backups]
    return Outcome(summary=f"{context.component.name} for {context.client}: backed up {', '.join(names)}",
                   details={"parts": names})


# ================================================================================================================
# restore
# ================================================================================================================
def client_specific_keys(model: Any) -> set[str]:
    """Settings that name the client itself (its domain): never carried into another client."""
    return {model.env_key(name) for name in model.model_fields if name == "domain" or name.endswith("_domain")}


def clone_settings(model: Any, archived: dict[str, str], stack: Any) -> tuple[dict[str, str], list[str]]:
    """What a clone takes from another client's archived .env: (carried values, keys left to the target)."""
    own = client_specific_keys(model)
    own |= {p.password_key for p in stack.backups if KIND[type(p).__name__] == "postgres" and p.password_key}
    carried = {k: v for k, v in archived.items() if k not in own}
    return carried, sorted(k for k in archived if k in own)


def _planned_env(context: LifecycleContext, reader: ArchiveReader, part: Any) -> tuple[bytes, dict[str, Any]]:
    """The .env the restore will write, checked to load as valid settings; nothing is written yet."""
    from agencystack import settings as settings_mod
    from agencystack.state import StateRoot, parse_env

    archived = reader.read_bytes(part.name)
    info: dict[str, Any] = {"cloned_from": None, "kept": []}
    if reader.client == context.client:
        planned = archived
    else:
        model = type(context.settings)
        carried, kept = clone_settings(model, parse_env(archived.decode("utf-8", "replace")), context.stack())
        with tempfile.TemporaryDirectory(prefix="agencystack-restore-") as scratch:
            target = StateRoot(Path(scratch)).component(context.client, context.component.name)
            target.ensure()
            if context.dir.env_file.is_file():
                target.env_file.write_bytes(context.dir.env_file.read_bytes())
                os.chmod(target.env_file, 0o600)
            target.save_env(carried)
            planned = target.env_file.read_bytes()
        info.update(cloned_from=reader.client, kept=kept)
    with tempfile.TemporaryDirectory(prefix="agencystack-restore-") as scratch:
        check = Path(scratch) / ".env"
        fd = os.open(check, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(planned)
        try:
            settings_mod.load(type(context.settings), context.global_settings, check, context.flags,
                              client=context.client)
        except UsageError as exc:
            raise BackupError(f"the archive's settings do not fit {context.component.name} "
                              f"{context.component.version or ''}: {exc}".replace("  ", " ")) from None
    return planned, info


def _reload_settings(context: LifecycleContext) -> list[str]:
    """Load the settings again from the restored .env (plus this call's flags); save what had to be generated."""
    context.reload_settings()
    return context.save_settings()


def _with_only(deployment: Any, keep: set[str]) -> Any:
    """The deployment with every service but ``keep`` scaled to 0 (networks and volumes still created)."""
    stack = deployment.stack.model_copy(deep=True)
    for service in stack.services:
        if service.name not in keep:
            service.replicas = 0
    return dataclasses.replace(deployment, stack=stack)


def _needed(stack: Any, services: set[str]) -> set[str]:
    """``services`` and everything they depend on."""
    needed, todo = set(), list(services)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(stack.service(name).depends_on)
    return needed


def restore_parts(context: LifecycleContext, archive: ArchiveReader) -> Outcome:
    """Restore every part of ``archive`` that the stack declares (see the module docstring for the order)."""
    from agencystack.results import Outcome

    stack = context.stack()
    declared = {p.name: p for p in stack.backups}
    kinds = {name: KIND[type(p).__name__] for name, p in declared.items()}
    todo, skipped = [], []
    for info in archive.parts:
        if info.name not in declared:
            skipped.append(info.name)
        elif info.kind != kinds[info.name]:
            raise BackupError(f"part {info.name!r} is a {info.kind} part in the archive but {context.component.name} "
                              f"declares a {kinds[info.name]} part")
        else:
            todo.append(declared[info.name])
    if not todo:
        raise BackupError(f"the archive holds no part that {context.component.name} declares "
                          f"(archive: {', '.join(archive.part_names) or 'none'}; declared: "
                          f"{', '.join(declared) or 'none'})")
    missing = [name for name in declared if name not in archive.part_names]
    _check_mounts(context, archive, stack)
    env_parts = [p for p in todo if kinds[p.name] == "env"]
    planned_env, env_info = _planned_env(context, archive, env_parts[0]) if env_parts else (None, {})
    volumes = [p for p in todo if kinds[p.name] == "volume"]
    dumps = [p for p in todo if kinds[p.name] in ("postgres", "command")]
    keep = _needed(stack, {p.service for p in dumps})
    running = context.deployment()
    staged = _stageable(context, running, archive, todo, kinds)
    for part in staged:  # while the component runs: live data untouched, a damaged part dropped with its scratch
        context.progress(part.name, f"loading into scratch database {_scratch(part.database)} (the component "
                                    "keeps running)")
        _stage_postgres(context, running, part, archive)
    context.progress("archive", "checking every stored byte")
    archive._await_verified()

    # -- from here on, things change --------------------------------------------------------------------------
    context.facts["restored_from"] = archive.name
    # with a volume to restore, step 4 removes every container anyway; without one, the database keeps running
    context.progress("restore", "stopping the component" + (" for the swap" if staged else ""))
    context.engine.stop(running, context.progress, keep=set() if volumes else keep)
    generated: list[str] = []
    if planned_env is not None:
        from agencystack.state import atomic_write

        context.progress(env_parts[0].name, "restoring the settings")
        context.dir.ensure()
        atomic_write(context.dir.env_file, planned_env)
        generated = _reload_settings(context)
    stack = context.stack()
    deployment = context.deployment()

    for part in staged:
        context.progress(part.name, f"swapping in database {part.database}")
        _swap_postgres(context, deployment, part)
    dumps = [p for p in dumps if p not in staged]

    if volumes:
        context.engine.apply(_with_only(deployment, set()), progress=context.progress)  # volumes exist, all down
        for part in volumes:
            context.progress(part.name, f"restoring volume {part.volume}")
            context.engine.volume_import(deployment, part.volume, archive.open(part.name))

    if dumps:
        context.engine.apply(_with_only(deployment, _needed(stack, {p.service for p in dumps})),
                             progress=context.progress)
        for part in dumps:
            context.progress(part.name, f"restoring ({kinds[part.name]})")
            if kinds[part.name] == "postgres":
                _restore_postgres(context, deployment, part, archive)
            else:
                _run(context, deployment, part.service, list(part.load), f"restoring part {part.name}",
                     env=_secret_env(context, part.env_keys), stdin=archive.open(part.name))

    context.progress("restore", "starting the component")
    deployed = context.deploy()
    restored = [p.name for p in todo]
    summary = f"{context.component.name} for {context.client}: restored {', '.join(restored)} from {archive.name}"
    if env_info.get("cloned_from"):
        summary += f" (cloned from client {env_info['cloned_from']})"
    return Outcome(summary=summary, url=deployed.url, changes=deployed.changes,
                   details={"archive": archive.name, "restored": restored, "skipped": skipped,
                            "not_in_archive": missing, "cloned_from": env_info.get("cloned_from"),
                            "not_carried": env_info.get("kept", []), "generated": generated})


def _check_mounts(context: LifecycleContext, archive: ArchiveReader, stack: Any) -> None:
    """Before anything changes: every file or directory the stack bind-mounts exists on this host. What a
    component's own install writes (PostHog's start scripts in the client's directory) is not in an archive, and a
    restore starts the stack without that install: into a client the component was never installed for, it cannot
    start. BackupError (exit 5) naming the archive's client and component and the way that works."""
    if not context.host.is_local:  # another machine's paths: its engine checks them
        return
    absent = sorted({m.source for s in stack.services if s.replicas for m in s.volumes
                     if m.is_bind and not os.path.exists(m.source)})
    if not absent:
        return
    name, client = context.component.name, context.client
    more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
    raise BackupError(f"{archive.name} holds {archive.component} of client {archive.client}: restoring it into "
                      f"client {client} needs what {name}'s install writes, and {absent[0]} does not exist{more}: "
                      f"run 'agencystack install {name} -c {client}' first, then this restore again")


def _wait_postgres(context: LifecycleContext, deployment: Any, part: Any, timeout: float = 120) -> None:
    """Wait until the server accepts TCP connections: on a fresh volume the official image's entrypoint first runs
    a temporary server on the unix socket only (which already passes a pg_isready healthcheck), then restarts it."""
    import time

    deadline = time.monotonic() + timeout
    tail = StderrTail()
    while True:
        code = context.engine.exec(deployment, part.service, ["pg_isready", "-q", "-h", "127.0.0.1", "-U", part.user],
                                   stdout=Discard(), stderr=tail)
        if code == 0:
            return
        if time.monotonic() > deadline:
            raise BackupError(f"restoring part {part.name}: Postgres in service {part.service} did not accept "
                              f"connections within {timeout:g}s (pg_isready exit {code})")
        time.sleep(0.5)


def _restore_postgres(context: LifecycleContext, deployment: Any, part: Any, archive: ArchiveReader) -> None:
    _wait_postgres(context, deployment, part)
    database, owner = _quoted_identifier(part.database), _quoted_identifier(part.user)
    _psql_admin(context, deployment, part, [*_owner_password(part), _drop(part.database), _drop(_scratch(part.database)),
                                            f"CREATE DATABASE {database} OWNER {owner} TEMPLATE template0;"],
                f"recreating database {part.database}")
    _run(context, deployment, part.service,
         ["psql", *PSQL_OPTIONS, "--single-transaction", "--username", part.user, "--dbname", part.database],
         f"restoring part {part.name} (loading the dump)", env=_pg_env(context, part), stdin=archive.open(part.name))


def _drop(database: str) -> str:
    """The statement that drops ``database`` if it exists, its sessions ended (PostgreSQL 13 or later)."""
    return f"DROP DATABASE IF EXISTS {_quoted_identifier(database)} WITH (FORCE);"


def _pg_env(context: LifecycleContext, part: Any) -> dict[str, str]:
    """The exec environment of the part's psql: its password from the .env (never an argument)."""
    return {"PGPASSWORD": _secret_env(context, [part.password_key])[part.password_key]} if part.password_key else {}


def _owner_password(part: Any) -> list[str]:
    """psql lines setting the part's user's password to the .env's (the volume may have been initialised with
    another: the .env is the single source), read from the environment, never an argument."""
    if not part.password_key:
        return []
    return ["\\set agencystack_password `printenv PGPASSWORD`",
            "ALTER ROLE CURRENT_USER PASSWORD :'agencystack_password';"]


# -- the one-pass restore of Postgres parts: a scratch database loaded while the component runs, then swapped in --
#: a database is staged only with this much room beside it: the dump's size (its tables, without their indexes)
#: times this, free in the data directory's filesystem; else it is restored in place, as before
STAGING_ROOM = 1.5
SCRATCH_SUFFIX = "_agencystack_restore"


def _scratch(database: str) -> str:
    """The scratch database's name (Postgres names: at most 63 bytes)."""
    return database.encode()[:63 - len(SCRATCH_SUFFIX)].decode(errors="ignore") + SCRATCH_SUFFIX


def _stageable(context: LifecycleContext, deployment: Any, archive: ArchiveReader, todo: list[Any],
               kinds: dict[str, str]) -> list:
    """The Postgres parts to load into scratch databases while the component runs: all of them when every part is
    a Postgres or settings part and each database's server answers with room for a second copy; else none (a
    volume or command part, a stopped or purged component, a full disk: the restore in place)."""
    dumps = [p for p in todo if kinds[p.name] == "postgres"]
    if not dumps or any(kinds[p.name] not in ("postgres", "env") for p in todo):
        return []
    import io

    for part in dumps:
        room = io.BytesIO()
        try:
            code = context.engine.exec(deployment, part.service, ["sh", "-c", _ROOM], stdout=room, stderr=Discard())
        except AgencyStackError:  # no such container or task: not running
            return []
        free = room.getvalue().decode(errors="replace").strip()
        if code != 0 or not free.isdigit():
            return []
        if int(free) * 1024 < archive.part_info(part.name).raw_size * STAGING_ROOM:
            context.progress(part.name, f"no room for a second copy of {part.database}: restoring it in place")
            return []
    return dumps


#: the server answers on TCP (pg_isready), then the free KiB of its data directory's filesystem
_ROOM = ('pg_isready -q -h 127.0.0.1 && df -Pk "${PGDATA:-/var/lib/postgresql/data}" | '
         "awk 'NR == 2 { print $4 }'")


def _psql_admin(context: LifecycleContext, deployment: Any, part: Any, script: list[str], what: str) -> None:
    import io

    admin_db = "template1" if part.database == "postgres" else "postgres"
    _run(context, deployment, part.service, ["psql", *PSQL_OPTIONS, "--username", part.user, "--dbname", admin_db],
         f"restoring part {part.name} ({what})", env=_pg_env(context, part),
         stdin=io.BytesIO(("\n".join(script) + "\n").encode()))


def _stage_postgres(context: LifecycleContext, deployment: Any, part: Any, archive: ArchiveReader) -> None:
    """Load the part into its scratch database (a leftover of a crashed restore dropped first); on any failure,
    the part's stream refusing its damaged end included, drop the scratch database and raise: nothing live
    changed."""
    scratch, owner = _quoted_identifier(_scratch(part.database)), _quoted_identifier(part.user)
    _psql_admin(context, deployment, part, [_drop(_scratch(part.database)),
                                            f"CREATE DATABASE {scratch} OWNER {owner} TEMPLATE template0;"],
                f"creating scratch database {_scratch(part.database)}")
    try:
        _run(context, deployment, part.service, ["psql", *PSQL_OPTIONS, "--single-transaction", "--username",
                                                 part.user, "--dbname", _scratch(part.database)],
             f"restoring part {part.name} (loading the dump into a scratch database)", env=_pg_env(context, part),
             stdin=archive.open(part.name))
    except BaseException:
        try:
            _psql_admin(context, deployment, part, [_drop(_scratch(part.database))], "dropping the scratch database")
        except AgencyStackError:
            pass  # the next restore drops it first
        raise


def _swap_postgres(context: LifecycleContext, deployment: Any, part: Any) -> None:
    """The staged database in place of the live one (milliseconds: a drop and a rename), the owner's password set
    to the restored settings' value, as the restore in place does."""
    database, scratch = _quoted_identifier(part.database), _quoted_identifier(_scratch(part.database))
    _psql_admin(context, deployment, part, [*_owner_password(part), _drop(part.database),
                                            f"ALTER DATABASE {scratch} RENAME TO {database};"],
                f"swapping in database {part.database}")


def describe_failure(exc: BaseException) -> str:
    """One line for an unexpected failure during a backup or restore."""
    if isinstance(exc, AgencyStackError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
