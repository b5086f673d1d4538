"""Validation of the names a user types: client ids, component names, domains, ports, ``--set`` pairs, image
references, and the characters no value may hold.

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
#: client ids the core keeps for itself: :data:`HOST` and every ``host-...`` (per-host namespaces and registered
#: hosts, see :func:`host_client`)
RESERVED_PREFIX = f"{HOST}-"
#: what no value may hold (C0 controls, DEL): a newline or NUL would carry structure into the .env, the compose
#: file or a terminal (an escape sequence); tabs too (no setting needs one, and a terminal shows it as spaces)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The OCI distribution reference grammar, as distribution/reference (reference.go's grammar, regexp.go's
# expressions) defines it:
#   reference        := name [ ":" tag ] [ "@" digest ]
#   name             := [domain '/'] remote-name
#   domain           := host [':' port-number]
#   host             := domain-name | IPv4address | \[ IPv6address \]
#   domain-name      := domain-component ['.' domain-component]*
#   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
#   port-number      := /[0-9]+/
#   path-component   := alpha-numeric [separator alpha-numeric]*
#   remote-name      := path-component ['/' path-component]*
#   alpha-numeric    := /[a-z0-9]+/
#   separator        := /[_.]|__|[-]+/
#   tag              := /[\w][\w.-]{0,127}/
#   digest           := digest-algorithm ":" digest-hex   (algorithm components /[A-Za-z][A-Za-z0-9]*/ joined by
#                       /[+._-]/; digest-hex /[0-9a-fA-F]{32,}/)
# and a name of at most 255 characters (NameTotalLengthMax).
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_IMAGE_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
IMAGE_REFERENCE = re.compile(rf"(?P<name>{_IMAGE_NAME})(?::[\w][\w.-]{{0,127}})?"
                             r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?", re.ASCII)
IMAGE_NAME_MAX = 255

#: the client id used when none is given; its derived defaults see the bare DOMAIN (others ``<client>.<DOMAIN>``)
DEFAULT_CLIENT = "default"


def client_id(value: str) -> str:
    """A client id: 1-32 chars of lowercase letters, digits and inner dashes (it becomes a path and a project name)."""
    if not CLIENT_ID.fullmatch(value or ""):
        raise UsageError(
            f"invalid client id {value!r}: use 1-32 lowercase letters, digits or inner dashes (e.g. 'acme')"
        )
    if value == HOST or value.startswith(RESERVED_PREFIX):
        raise UsageError(f"client id {value!r} is reserved: {HOST!r} and '{RESERVED_PREFIX}...' are the core's own "
                         "(per-host components such as the edge); choose another")
    return value


def control_characters(value: str, what: str) -> str:
    """``value`` unless it holds a control character (C0 or DEL): UsageError naming ``what`` and the first such
    character by its code point (never the value itself: it may be a secret)."""
    found = CONTROL.search(value)
    if found:
        raise UsageError(f"{what} holds a control character (U+{ord(found.group()):04X} at position "
                         f"{found.start() + 1}): values are one line of printable text")
    return value


def image_reference(value: str) -> str:
    """An image reference as the OCI distribution grammar defines it (``name[:tag][@digest]``, e.g.
    ``postgres:15``, ``ghcr.io/acme/app@sha256:...``); ValueError saying what is allowed otherwise."""
    found = IMAGE_REFERENCE.fullmatch(value or "")
    if found is None or len(found.group("name")) > IMAGE_NAME_MAX:
        raise ValueError(f"{value!r} is not an image reference: expected [registry/]name[:tag][@digest] with a "
                         "lowercase name (e.g. postgres:15 or ghcr.io/acme/app:1.2)")
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
