"""Bundles: named sets of components installed together (``agencystack install demo-core -c acme``).

Plugins contribute bundles through the ``bundles`` hook (see :mod:`agencystack.hookspecs`); this module is also the
core plugin contributing ``demo-core``. :func:`resolve` turns a bundle into the components to install and what each
waits for (``requires`` and the SSO relation), which :mod:`agencystack.bulk` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agencystack.markers import hookimpl

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agencystack.component import Component

DEMO_CORE = "demo-core"


@dataclass(frozen=True)
class Bundle:
    """A named set of components (``components``: their names; order does not matter, dependencies decide it)."""

    name: str
    components: tuple[str, ...]
    description: str = ""


@hookimpl
def bundles():
    return [Bundle(DEMO_CORE, ("edge", "keycloak", "dashboard", "posthog"),
                   "a client's core stack: the edge, Keycloak SSO, the agency dashboard and PostHog")]


def resolve(known: Mapping[str, Component], bundle: Bundle) -> dict[str, tuple[str, ...]]:
    """Every component to install for ``bundle`` (its members and, transitively, what they require) among the
    ``known`` components (``Plugins.components``), each with the components it waits for, each after those
    (dependency order). Unknown members, or requirements in a cycle: UsageError (exit 2)."""
    from agencystack.errors import UsageError

    unknown = sorted(m for m in bundle.components if m not in known)
    if unknown:
        raise UsageError(f"bundle {bundle.name!r} names component(s) no plugin provides: {', '.join(unknown)} "
                         "(see 'agencystack components list')")
    members: list[str] = []

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise UsageError(f"components require each other in a cycle: {' -> '.join((*chain, name))}")
        if name not in known:
            raise UsageError(f"{chain[-1]} requires {name}, which no plugin provides")
        for needed in known[name].requires:
            add(needed, (*chain, name))
        if name not in members:
            members.append(name)

    for member in bundle.components:
        add(member, ())

    def requirements(name: str) -> set[str]:
        found: set[str] = set()
        for needed in known[name].requires:
            found |= {needed, *requirements(needed)}
        return found

    providers = [m for m in members if "sso" in known[m].provides]
    waits: dict[str, tuple[str, ...]] = {}
    for name in members:
        after = set(known[name].requires)
        if name not in providers and not known[name].per_host:  # the SSO relation: protected from the start
            after |= {p for p in providers if name not in requirements(p)}
        waits[name] = tuple(sorted(after))
    ordered: dict[str, tuple[str, ...]] = {}  # each after what it waits for, otherwise as found
    while len(ordered) < len(waits):
        ready = next(n for n in waits if n not in ordered and all(a in ordered for a in waits[n]))
        ordered[ready] = waits[ready]
    return ordered
