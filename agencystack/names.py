"""Validation of the names a user types: client ids, component names, domains, ports, ``--set`` pairs.

Each validator returns the cleaned value or raises :class:`~agencystack.errors.UsageError` with one line that
says what is wrong and what is allowed.
"""

from __future__ import annotations

import re

from agencystack.errors import UsageError

CLIENT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
COMPONENT_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
SETTING_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
#: the client id under which per-host components (the edge) keep their state: <root>/clients/host/<component>,
#: project ``host_<component>``. Reserved: no tenant may use it, so nothing of a tenant can collide with it.
HOST = "host"
#: the client id used when none is given; its derived defaults see the bare DOMAIN (others ``<client>.<DOMAIN>``)
DEFAULT_CLIENT = "default"


def client_id(value: str) -> str:
    """A client id: 1-32 chars of lowercase letters, digits and inner dashes (it becomes a path and a project name)."""
    if not CLIENT_ID.fullmatch(value or ""):
        raise UsageError(
            f"invalid client id {value!r}: use 1-32 lowercase letters, digits or inner dashes (e.g. 'acme')"
        )
    if value == HOST:
        raise UsageError(f"client id {value!r} is reserved for per-host components (the edge); choose another")
    return value


def host_client(namespace: str = "", host: str = "") -> str:
    """The client id per-host components live under: :data:`HOST`, or ``host-<namespace>`` in a host namespace
    (``AGENCYSTACK_HOST_NAMESPACE``: tests that install per-host components on a shared engine keep them apart,
    with their own project, network and ports, never touching the host's real ones); on a registered Docker host
    ``host`` (agencystack.fleet) ``host-<host>`` (``host-<namespace>-<host>``): each host has its own edge."""
    return "-".join(part for part in (HOST, namespace, host) if part)


def component_name(value: str) -> str:
    """A component name as plugins register it: lowercase letters, digits and dashes, starting with a letter."""
    if not COMPONENT_NAME.fullmatch(value or ""):
        raise UsageError(f"invalid component name {value!r}: use lowercase letters, digits and dashes")
    return value


def domain(value: str) -> str:
    """A DNS name such as ``analytics.acme.com`` or ``posthog.localhost`` (lowercased, no scheme, no port)."""
    cleaned = (value or "").strip().lower().rstrip(".")
    if len(cleaned) > 253 or not DOMAIN.fullmatch(cleaned) or cleaned.replace(".", "").isdigit():
        raise UsageError(f"invalid domain {value!r}: expected a host name such as analytics.example.com")
    return cleaned


def port(value: int | str) -> int:
    """A TCP port, 1-65535."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid port {value!r}: expected a number from 1 to 65535") from None
    if not 1 <= number <= 65535:
        raise UsageError(f"invalid port {value!r}: expected a number from 1 to 65535")
    return number


def service_names(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--service`` values: names as stacks declare them (lowercase letters, digits, ``_ . -``)."""
    for value in values:
        if not SERVICE_NAME.fullmatch(value or ""):
            raise UsageError(f"invalid --service {value!r}: service names are lowercase letters, digits, '_', '.' "
                             "and '-' (see 'agencystack status')")
    return tuple(values)


def setting_pairs(pairs: list[str] | None) -> dict[str, str]:
    """Parse repeated ``--set KEY=VALUE`` options into a dict (keys as typed; the settings model resolves them)."""
    parsed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not SETTING_KEY.fullmatch(key):
            raise UsageError(f"malformed --set {pair!r}: expected KEY=VALUE, e.g. --set POSTHOG_PORT=8000")
        parsed[key] = value
    return parsed


def project(client: str, component: str) -> str:
    """The engine project name of one (client, component): unique because neither part may contain '_'."""
    return f"{client}_{component}"
