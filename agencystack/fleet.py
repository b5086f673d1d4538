"""The fleet: the Docker hosts a state root places clients on (``agencystack hosts add|list|remove``).

The local engine (``DOCKER_HOST``, default ``unix:///var/run/docker.sock``) is the implicit host :data:`LOCAL`:
a root that never registered a host behaves exactly as before (nothing is read or asked). Registered hosts live in
``<root>/hosts.json`` (0600; :meth:`agencystack.state.StateRoot.fleet_file`), each a :class:`DockerHost` validated
by pydantic: a name, its engine address (``ssh://user@host``, ``tcp://host:2376``, ``unix:///path``) and, for TLS,
the *path* of the directory holding ``ca.pem``/``cert.pem``/``key.pem`` (as the docker CLI's ``DOCKER_CERT_PATH``).
No key material and no password is ever copied into AgencyStack's files: SSH authenticates with the operator's
agent and keys (``~/.ssh/config``, ``known_hosts``: unknown host keys are refused), TLS reads the files where they
are. An address that carries a password is refused (exit 2).

Changes to the registry happen under the root's fleet lock; ``remove`` is refused (exit 2) while clients are
placed on the host (:mod:`agencystack.placement`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agencystack.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from agencystack.state import StateRoot

#: the implicit default host: the engine at DOCKER_HOST
LOCAL = "local"
#: host names: short DNS-label-like words (they become part of the per-host client id ``host-<name>``)
HostName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")]
SCHEMES = ("unix", "tcp", "ssh")
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


class DockerHost(BaseModel):
    """One engine clients can be placed on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: HostName
    docker_host: str
    tls_cert_path: Path | None = None  # directory with ca.pem, cert.pem, key.pem (read where it is, never copied)
    tls_verify: bool = True
    added_at: str = ""
    swarm: bool = False  # the address is a Swarm manager's: the Swarm driver, Swarm schedules across its nodes

    @field_validator("docker_host")
    @classmethod
    def _address(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"{value!r}: use ssh://user@host, tcp://host:2376 or unix:///path/docker.sock")
        if parts.password is not None:
            raise ValueError("the address carries a password: SSH uses your agent or keys, TLS its certificate "
                             "files (--tls-cert-path); no secret is stored")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"{value!r}: a unix address needs the socket's path (unix:///run/docker.sock)")
        if parts.scheme in ("tcp", "ssh") and not parts.hostname:
            raise ValueError(f"{value!r}: no host name")
        if parts.scheme == "tcp" and parts.port is None:
            raise ValueError(f"{value!r}: name the port (tcp://host:2376)")
        return value

    @model_validator(mode="after")
    def _tls(self) -> DockerHost:
        if self.tls_cert_path is not None:
            if not self.docker_host.startswith("tcp://"):
                raise ValueError("--tls-cert-path is for tcp:// addresses")
            missing = [f for f in TLS_FILES if not (self.tls_cert_path / f).is_file()]
            if missing:
                raise ValueError(f"{self.tls_cert_path} lacks {', '.join(missing)} (the docker CLI's "
                                 "DOCKER_CERT_PATH layout)")
        return self

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL


def local(docker_host: str) -> DockerHost:
    """The implicit default host: the engine at ``docker_host`` (the global DOCKER_HOST setting; its TLS from
    DOCKER_CERT_PATH, as before)."""
    return DockerHost.model_construct(name=LOCAL, docker_host=docker_host, tls_cert_path=None,
                                      tls_verify=True, added_at="")


def _error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if where == "name":
        return "invalid host name: use 1-16 lowercase letters, digits or inner dashes, starting with a letter"
    return f"{where.replace('_', '-')}: {message}" if where else message


class Fleet:
    """The hosts of one state root: :data:`LOCAL` (implicit, the engine at ``docker_host``) and the registered ones
    (``GlobalSettings.fleet()`` gives the configured one)."""

    def __init__(self, root: StateRoot, docker_host: str, lock_timeout: float):
        self.root, self.docker_host, self.lock_timeout = root, docker_host, lock_timeout

    # -- reading -------------------------------------------------------------------------------------------
    def registered(self) -> list[DockerHost]:
        """The registered hosts, by name (none when the root never registered one: nothing is created)."""
        path = self.root.fleet_file
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
        try:
            return sorted((DockerHost.model_validate(item) for item in data.get("hosts", [])), key=lambda h: h.name)
        except ValidationError as exc:
            raise UsageError(f"{path}: {_error(exc)}") from None

    def hosts(self) -> list[DockerHost]:
        """Every host: the local one first, then the registered ones."""
        return [local(self.docker_host), *self.registered()]

    def get(self, name: str) -> DockerHost:
        """The host called ``name`` (exit 2 naming the known ones otherwise)."""
        for host in self.hosts():
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts())
        raise UsageError(f"unknown host {name!r} (known: {known}; see 'agencystack hosts add')")

    @property
    def single(self) -> bool:
        """Only the local engine: placement has nothing to choose (and asks no engine)."""
        return not self.root.fleet_file.is_file() or not self.registered()

    # -- changing ------------------------------------------------------------------------------------------
    @contextmanager
    def _changing(self) -> Iterator[list[DockerHost]]:
        with self.root.fleet_lock("hosts", self.lock_timeout):
            hosts = self.registered()
            yield hosts
            self._save(hosts)

    def _save(self, hosts: list[DockerHost]) -> None:
        from agencystack.state import atomic_write, ensure_dir

        if not self.root.path.is_dir():
            ensure_dir(self.root.path, 0o755)
        payload = {"hosts": [h.model_dump(mode="json", exclude_none=True) for h in sorted(hosts, key=lambda h: h.name)]}
        atomic_write(self.root.fleet_file, json.dumps(payload, indent=2) + "\n")

    def add(self, name: str, docker_host: str, *, tls_cert_path: str | None = None,
            tls_verify: bool = True, swarm: bool = False,
            detect: Callable[[DockerHost], bool] | None = None) -> DockerHost:
        """Register a host (exit 2 for bad input or a name taken; nothing written then); ``swarm``: the address
        is a Swarm manager's; else ``detect(host)``, when given, says so, asked once the input is valid (an
        engine that does not answer is not taken for a swarm)."""
        from agencystack.state import now

        try:
            host = DockerHost(name=name, docker_host=docker_host, tls_verify=tls_verify, added_at=now(), swarm=swarm,
                              tls_cert_path=None if tls_cert_path is None else Path(tls_cert_path).resolve())
        except ValidationError as exc:
            raise UsageError(_error(exc)) from None
        if name == LOCAL:
            raise UsageError(f"host name {LOCAL!r} is the local engine (DOCKER_HOST); choose another")
        _refuse_taken(name, self.registered())  # before the engine is asked; again under the lock (a race)
        if not swarm and detect is not None and detect(host):
            host = host.model_copy(update={"swarm": True})
        with self._changing() as hosts:
            _refuse_taken(name, hosts)
            hosts.append(host)
        return host

    def remove(self, name: str, *, holding: Callable[[str], list[str]]) -> DockerHost:
        """Unregister a host: refused (exit 2) for the local one and while ``holding(name)`` (asked under the fleet
        lock) names clients placed there (``placement.remove_host`` passes the placement records' answer)."""
        if name == LOCAL:
            raise UsageError(f"{LOCAL!r} is the local engine (DOCKER_HOST): it cannot be removed")
        if not any(h.name == name for h in self.registered()):  # bad input: refused before the lock writes a file
            raise UsageError(f"unknown host {name!r} (see 'agencystack hosts list')")
        with self._changing() as hosts:
            found = next((h for h in hosts if h.name == name), None)
            if found is None:
                raise UsageError(f"unknown host {name!r} (see 'agencystack hosts list')")
            placed = holding(name)
            if placed:
                raise UsageError(f"host {name!r} still holds client(s) {', '.join(placed)}: move them "
                                 "('agencystack move -c CLIENT --to HOST') or uninstall them with --purge first")
            hosts.remove(found)
        return found


def _refuse_taken(name: str, hosts: list[DockerHost]) -> None:
    if any(h.name == name for h in hosts):
        raise UsageError(f"host {name!r} is already registered (see 'agencystack hosts list')")
