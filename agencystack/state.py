"""Per-client state on disk: where everything lives (:class:`StateRoot`), atomic writes, the .env, the install
manifest, what "installed" means, and the lifecycle locks.

:class:`StateRoot` is the one place that names a path under the state root (``AGENCYSTACK_ROOT``, default
/opt/agency_stack) or the log directory (``AGENCYSTACK_LOG_DIR``); everything else asks it. Layout::

    <root>/clients/<client>/<component>/     0700: holds secrets (a :class:`ComponentDir`)
        .env              0600  the component's saved settings and generated secrets (the single source)
        compose.yaml      0600  the rendered deployment, readable by ``docker compose -p <project>``
        manifest.json     0600  versions, images, timestamps and outcome of each action
        backups/          0700  default destination of backup archives
    <root>/locks/<client>_<component>.lock (+ .holder: who holds it), hosts.lock: present only while held
    <root>/cache/<name>/                     host-wide caches components keep (e.g. PostHog's upstream files)
    <root>/hosts.json                 0600  the registered Docker hosts (agencystack.fleet; absent: the local one only)
    <root>/clients/<client>/placement.json  0600  the host the client is placed on (agencystack.placement)
    <root>/clients/<client>/move.json       0600  the journal of a move between hosts in progress (agencystack.move)
    <root>/locks/fleet.lock                  present only while the registry or a placement changes
    <log_dir>/components/<component>.log     one JSON line per event of the component
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agencystack.errors import LockTimeout, UsageError

SECRET_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600
MANIFEST_HISTORY = 20


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def ensure_dir(path: Path, mode: int = SECRET_DIR_MODE) -> Path:
    """Create ``path`` (and parents) and set its mode; parents get 0755 unless they exist."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
    except PermissionError:
        raise UsageError(f"cannot write {path}: run as root or point AGENCYSTACK_ROOT/AGENCYSTACK_LOG_DIR "
                         "at a writable directory") from None
    return path


def atomic_write(path: Path, data: bytes | str, mode: int = SECRET_FILE_MODE, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a part: temp, fsync, rename.
    ``durable=False`` skips the fsyncs, for a file nothing needs after a crash (who holds a lock)."""
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _env_line(key: str, value: str) -> str:
    if value == "" or any(c in value for c in " \t\"'#$\\\n`"):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"{key}='{escaped}'"
    return f"{key}={value}"


def parse_env(text: str) -> dict[str, str]:
    """The ``KEY=value`` pairs of .env text, as docker compose reads them (python-dotenv's parser), each value as
    it was saved: no ``${VAR}`` in it is expanded (python-dotenv would, even in single quotes)."""
    import io

    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}


class StateRoot:
    """Where everything lives: the state root at ``path`` and the log directory ``log_dir`` (see the module's
    layout). The one place that joins their path segments; it also lists what the root holds and takes its locks."""

    def __init__(self, path: Path, log_dir: Path | None = None):
        self.path = Path(path)
        self.log_dir = None if log_dir is None else Path(log_dir)

    def __repr__(self) -> str:
        return f"StateRoot({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateRoot) and (self.path, self.log_dir) == (other.path, other.log_dir)

    def __hash__(self) -> int:
        return hash((self.path, self.log_dir))

    # -- clients and their components -----------------------------------------------------------------------
    def client_dir(self, client: str) -> Path:
        """``<root>/clients/<client>``: the directories of the client's components."""
        return self.path / "clients" / client

    def dashboard_file(self, client: str) -> Path:
        """``<root>/clients/<client>/dashboard.json``: the client's dashboard registry document."""
        return self.client_dir(client) / "dashboard.json"

    def dashboard_published(self, client: str) -> Path:
        """``<root>/dashboards/<client>/dashboard.json``: the copy a dashboard container mounts (its directory
        holds nothing else: no settings, no secrets)."""
        return self.path / "dashboards" / client / "dashboard.json"

    def prepare_dashboard_published(self, client: str) -> Path:
        """Make the directory of :meth:`dashboard_published` (0755, readable by a dashboard container's user);
        returns the document's path."""
        path = self.dashboard_published(client)
        ensure_dir(path.parent.parent, 0o755)
        ensure_dir(path.parent, 0o755)
        return path

    def dashboard_credentials(self, client: str) -> Path:
        """``<root>/dashboards-private/<client>/credentials.json``: the secrets the client's dashboard server needs
        (``DashboardEntry.secrets``, e.g. PostHog's personal API key), 0600, owned by whoever owns its directory.
        Written only when that directory exists: the dashboard component's install creates it (0700, owned by its
        container's user) and mounts it read-only into its container alone."""
        return self.path / "dashboards-private" / client / "credentials.json"

    def prepare_dashboard_credentials(self, client: str) -> Path:
        """Make the directory of :meth:`dashboard_credentials` (0700; its parent 0711: traversable, not listable,
        each client's directory is its dashboard's own), so that the core writes the file from now on; returns the
        file's path. A dashboard's install does it (and gives the directory to its container's user), and so does
        ``agencystack dashboard serve``."""
        path = self.dashboard_credentials(client)
        ensure_dir(path.parent.parent, 0o711)
        ensure_dir(path.parent, 0o700)
        return path

    @contextlib.contextmanager
    def dashboard_lock(self, client: str, timeout: float) -> Iterator[None]:
        """Held while the client's dashboard document is rebuilt and written (``locks/<client>.dashboard.lock``;
        the dot keeps it apart from every component's lock)."""
        with _held(self.path / "locks" / f"{client}.dashboard.lock", "dashboard", timeout,
                   busy=f"the dashboard document of client {client} is being written"):
            yield

    def component(self, client: str, component: str) -> ComponentDir:
        """The directory of one (client, component), whether it exists or not."""
        return ComponentDir(self, client, component)

    def components(self, client: str | None = None) -> Iterator[ComponentDir]:
        """Every (client, component) directory that holds state (see :attr:`ComponentDir.has_state`), sorted;
        one client's only when ``client`` is given."""
        clients = self.client_dir(client) if client is not None else self.path / "clients"
        if not clients.is_dir():
            return
        # one client: its own directory, not a walk over every client's
        client_dirs = [clients] if client is not None else sorted(p for p in clients.iterdir() if p.is_dir())
        for client_dir in client_dirs:
            for comp_dir in sorted(p for p in client_dir.iterdir() if p.is_dir()):
                found = self.component(client_dir.name, comp_dir.name)
                if found.has_state:
                    yield found

    def installed(self, client: str | None = None) -> Iterator[ComponentDir]:
        """Every installed (client, component) (see :attr:`ComponentDir.installed`), sorted."""
        return (found for found in self.components(client) if found.installed)

    def backup_dirs(self, client: str, component: str | None = None) -> list[Path]:
        """Where the default archives of ``client`` live: one component's ``backups/``, or every component
        directory's (a purged component's too: a purge keeps its archives)."""
        if component is not None:
            return [self.component(client, component).backups]
        base = self.client_dir(client)
        return sorted(self.component(client, p.name).backups for p in base.iterdir() if p.is_dir()) \
            if base.is_dir() else []

    def root_of(self, directory: str, client: str, component: str) -> str:
        """The state root that ``directory``, the (client, component) directory of some root, belongs to."""
        return directory.removesuffix("/" + str(self.component(client, component).path.relative_to(self.path)))

    def placement_file(self, client: str) -> Path:
        """``<root>/clients/<client>/placement.json``: which host the client is placed on (agencystack.placement)."""
        return self.client_dir(client) / "placement.json"

    def move_file(self, client: str) -> Path:
        """``<root>/clients/<client>/move.json``: the journal of the client's move in progress (agencystack.move)."""
        return self.client_dir(client) / "move.json"

    # -- the fleet ------------------------------------------------------------------------------------------
    @property
    def fleet_file(self) -> Path:
        """``<root>/hosts.json``: the registered Docker hosts (agencystack.fleet)."""
        return self.path / "hosts.json"

    @contextlib.contextmanager
    def fleet_lock(self, action: str, timeout: float) -> Iterator[None]:
        """Hold the root's fleet lock: the host registry and placements change under it (see agencystack.fleet)."""
        with _held(self.path / "locks" / "fleet.lock", action, timeout, busy="the hosts are being changed"):
            yield

    # -- caches and logs ------------------------------------------------------------------------------------
    def cache(self, name: str = "") -> Path:
        """``<root>/cache/<name>``: a host-wide cache a component keeps (``<root>/cache`` itself without a name)."""
        return self.path / "cache" / name if name else self.path / "cache"

    def component_log(self, component: str) -> Path:
        """``<log_dir>/components/<component>.log``."""
        if self.log_dir is None:
            raise ValueError(f"{self!r} was made without a log directory")
        return self.log_dir / "components" / f"{component}.log"

    # -- locks ----------------------------------------------------------------------------------------------
    def lock_files(self, client: str, component: str) -> list[Path]:
        """The (client, component)'s lock and holder files (absent unless a call holds the lock right now)."""
        path = self.path / "locks" / f"{client}_{component}.lock"
        return [path, path.with_suffix(".holder")]

    @contextlib.contextmanager
    def lifecycle_lock(self, client: str, component: str, action: str, timeout: float) -> Iterator[None]:
        """Hold the (client, component) lock; after ``timeout`` seconds raise LockTimeout naming the holder."""
        with _held(self.lock_files(client, component)[0], action, timeout,
                   busy=f"{component} for client {client} is busy"):
            yield

    @contextlib.contextmanager
    def hosts_lock(self, action: str, timeout: float) -> Iterator[None]:
        """Hold the root's host-wide lock: whoever checks which public hosts are free holds it until the claim is
        written (see :mod:`agencystack.hosts`), so two installs never both find a host free."""
        with _held(self.path / "locks" / "hosts.lock", action, timeout,
                   busy="the public host names are being claimed"):
            yield


#: the actions that put a component on the engine or take it off (their last one decides whether it is installed)
DEPLOYING = ("install", "restore", "uninstall")


def installed_by(manifest: dict[str, Any]) -> bool:
    """Whether the manifest of a component with state says it is installed: its last install, restore or uninstall
    (:data:`DEPLOYING`) is not a successful uninstall (:attr:`ComponentDir.installed`)."""
    history = manifest.get("history", [])
    last = next((h for h in reversed(history) if h.get("action") in DEPLOYING), None)
    return not (last is not None and last["action"] == "uninstall" and last.get("outcome") == "ok")


class ComponentDir:
    """The directory of one (client, component) under a :class:`StateRoot` (a path is taken as one)."""

    def __init__(self, root: StateRoot | Path, client: str, component: str):
        self.state_root = root if isinstance(root, StateRoot) else StateRoot(root)
        self.client, self.component = client, component
        self.path = self.state_root.client_dir(client) / component

    env_file = property(lambda self: self.path / ".env")
    compose_file = property(lambda self: self.path / "compose.yaml")
    manifest_file = property(lambda self: self.path / "manifest.json")
    backups = property(lambda self: self.path / "backups")

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    @property
    def has_state(self) -> bool:
        """Settings or a manifest exist: what the lifecycle records into (a purge deletes both; it may leave the
        directory behind with only its backups/)."""
        return self.env_file.is_file() or self.manifest_file.is_file()

    @property
    def installed(self) -> bool:
        """Installed: the one definition. The component has state here and its last install, restore or
        uninstall (:data:`DEPLOYING`) is not a successful uninstall. An install that failed counts (it saved
        settings, and may have started containers and claimed hosts: status, logs and uninstall are for it); a
        purge leaves no state, so nothing purged is installed."""
        return self.has_state and installed_by(self.read_manifest())

    def ensure(self) -> Path:
        ensure_dir(self.path.parent)
        return ensure_dir(self.path)

    # -- .env ---------------------------------------------------------------------------------------------------
    def read_env(self) -> dict[str, str]:
        return parse_env(self.env_file.read_text()) if self.env_file.is_file() else {}

    def save_env(self, updates: Mapping[str, str]) -> bool:
        """Merge ``updates`` into the .env, keeping every other line; True if the file changed."""
        current = self.read_env()
        if all(current.get(k) == v for k, v in updates.items()):
            return False
        self.ensure()
        lines = self.env_file.read_text().splitlines() if self.env_file.is_file() else [
            f"# {self.component} settings for client {self.client}, managed by agencystack.",
            "# Generated secrets are kept forever: changing them can make existing data unreadable.",
        ]
        pending = dict(updates)
        out = []
        for line in lines:
            key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
            if key in pending:
                out.append(_env_line(key, pending.pop(key)))
            else:
                out.append(line)
        out.extend(_env_line(k, v) for k, v in pending.items())
        atomic_write(self.env_file, "\n".join(out) + "\n")
        return True

    # -- manifest -----------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def record(self, action: str, outcome: str, **facts: Any) -> dict[str, Any]:
        """Update the manifest with one action's facts (versions, images, outcome); keeps a short history."""
        self.ensure()
        manifest = self.read_manifest()
        stamp = now()
        manifest.setdefault("client", self.client)
        manifest.setdefault("component", self.component)
        manifest.setdefault("created_at", stamp)
        manifest.update({k: v for k, v in facts.items() if v is not None})
        manifest["updated_at"] = stamp
        manifest["last_action"] = {"action": action, "outcome": outcome, "at": stamp}
        history = manifest.setdefault("history", [])
        history.append({"action": action, "outcome": outcome, "at": stamp})
        del history[:-MANIFEST_HISTORY]
        self._write_manifest(manifest)
        return manifest

    def note(self, **facts: Any) -> None:
        """Add facts to the manifest outside an action's record (no history entry): what is known only after the
        action returned, such as a backup archive's size once it is committed."""
        manifest = self.read_manifest()
        manifest.update(facts)
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write(self.manifest_file, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _held(path: Path, action: str, timeout: float, *, busy: str) -> Iterator[None]:
    """An exclusive flock on ``path`` whose file exists only while it is held: the holder deletes it before it
    lets go. A waiter that wins the lock on a file already deleted (or replaced) sees that the path no longer
    names its file and tries again, so deleting never lets two callers in at once."""
    import fcntl

    ensure_dir(path.parent, 0o755)
    holder = path.with_suffix(".holder")
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(f"{busy}: {_describe_holder(holder)}; waited {timeout:g}s "
                                          "(AGENCYSTACK_LOCK_TIMEOUT)") from None
                    time.sleep(0.05)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file we locked was deleted by the holder we waited for: lock the current one
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "action": action,
                "command": " ".join(["agencystack", *sys.argv[1:3]]), "since": now(), "t": time.time()}
        atomic_write(holder, json.dumps(info), durable=False)  # it names the holder; a crash frees the lock anyway
        yield
    finally:
        for leftover in (holder, path):  # nothing is left behind: a lock file exists only while it is held
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        os.close(fd)


def _describe_holder(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return "held by another process"
    return f"held by pid {info.get('pid')} ({info.get('action')}) on {info.get('host')} since {info.get('since')}"
