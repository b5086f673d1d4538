"""Public host names: on a state root's edge, each host is routed for one (client, component) only.

Which hosts a (client, component) holds is read from what it deployed: the Traefik router rules in its rendered
``compose.yaml`` (written by every install, under :meth:`agencystack.state.StateRoot.hosts_lock`). A component that
is not installed (``ComponentDir.installed``: its last install, restore or uninstall was a successful uninstall, or
it was purged) holds nothing any more. An install whose routes name a host held by another
client or component is refused (exit 2, naming the holder) before anything is written or started; ``plan`` shows
the same conflicts. Checking and claiming happen under the root's host-wide lock, so two installs started together
can never both find a host free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agencystack.errors import UsageError

if TYPE_CHECKING:
    from agencystack.state import StateRoot

_HOST = re.compile(r"Host\(`([^`]+)`\)")
_RULE = re.compile(r"^traefik\.http\.routers\.[^.]+\.rule$")


@dataclass(frozen=True)
class Conflict:
    host: str
    client: str
    component: str

    def __str__(self) -> str:
        return f"{self.host} is already routed for client {self.client!r} ({self.component})"


def routed_hosts(compose_file: Path) -> set[str]:
    """The hosts of every Traefik router rule in a rendered compose file (empty if it has none or is unreadable).
    A file that never mentions a router is not parsed (each install reads every component's file)."""
    try:
        text = compose_file.read_text()
    except OSError:
        return set()
    if "traefik.http.routers." not in text:
        return set()
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError:
        return set()
    hosts: set[str] = set()
    for service in (data.get("services") or {}).values():
        labels = (service or {}).get("labels") or {}
        if isinstance(labels, list):
            labels = dict(item.partition("=")[::2] for item in labels)
        for key, value in labels.items():
            if _RULE.match(str(key)):
                hosts.update(h.lower() for h in _HOST.findall(str(value)))
    return hosts


def holders(root: StateRoot) -> dict[str, tuple[str, str]]:
    """host -> (client, component) for every component installed under ``root`` that routes it."""
    held: dict[str, tuple[str, str]] = {}
    for cdir in root.installed():
        for host in routed_hosts(cdir.compose_file):
            held.setdefault(host, (cdir.client, cdir.component))
    return held


def conflicts(root: StateRoot, client: str, component: str, hosts: Iterable[str]) -> list[Conflict]:
    """The hosts among ``hosts`` that another client or component already routes."""
    hosts = list(hosts)
    if not hosts:  # routes nothing: nothing to read
        return []
    held = holders(root)
    found = []
    for host in sorted({h.lower() for h in hosts}):
        owner = held.get(host)
        if owner is not None and owner != (client, component):
            found.append(Conflict(host, *owner))
    return found


def refuse(found: list[Conflict], component: str, client: str) -> None:
    """Raise the one-line refusal for ``found`` (nothing when empty)."""
    if found:
        option = "--domain" if len(found) == 1 else "its domain settings"
        raise UsageError(f"{component} for client {client!r}: {'; '.join(map(str, found))}; choose another host "
                         f"({option}) or uninstall the holder first")
