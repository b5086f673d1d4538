"""Upstream's hobby deployment and this project's rendered PostHog stack, both reduced to the same comparable facts
(service set, image names, command/entrypoint, environment, mounted upstream files, depends_on, healthchecks,
published ports, resource limits, the proxy's path table), and the differences between them.

Upstream side: ``tests/data/posthog-upstream`` (see its README): the hobby file, each service merged over the base
service it ``extends`` the way compose merges them (mappings merged key by key, volumes by container path), then
interpolated with the hobby ``.env`` this project's settings stand for (:data:`UPSTREAM_ENV`). The proxy table is
read from the Caddyfile the base file embeds. Our side: the compose document ``install`` writes (and ``agencystack
render`` prints), plus the stack's routes.
"""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "posthog-upstream"
HOBBY, BASE = DATA / "docker-compose.hobby.yml", DATA / "docker-compose.base.yml"
CHECKOUT = "./posthog/"  # where upstream's installer checks PostHog out, beside the compose files

#: the hobby .env (and unset variables' defaults) as this project's settings provide them: each upstream variable
#: becomes the ``${KEY}`` reference (or value) our stack gives its consumers
UPSTREAM_ENV = {
    "DOMAIN": "analytics.acme.com",
    "POSTHOG_SECRET": "${POSTHOG_SECRET}",
    "ENCRYPTION_SALT_KEYS": "${POSTHOG_ENCRYPTION_SALT_KEYS}",
    "ANTHROPIC_API_KEY": "${POSTHOG_ANTHROPIC_API_KEY}",
    "OPENAI_API_KEY": "${POSTHOG_OPENAI_API_KEY}",
    "REGISTRY_URL": "posthog/posthog",
}
COMPOSE_HEALTH_DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}
CONDITIONS = {"service_started": "started", "service_healthy": "healthy",
              "service_completed_successfully": "completed"}


@dataclass(frozen=True, order=True)
class Difference:
    """One fact that differs: ``aspect`` of ``service`` (``*`` for the whole stack), ``key`` within it."""

    service: str
    aspect: str
    key: str
    upstream: str
    ours: str

    def __str__(self) -> str:
        return f"{self.service} {self.aspect} {self.key}: upstream {self.upstream!r}, ours {self.ours!r}"


# -- upstream ------------------------------------------------------------------------------------------------------
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> Any:
    """Compose's interpolation with :data:`UPSTREAM_ENV` (``$$`` is a literal ``$``)."""
    if isinstance(value, str):
        def one(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(3)
            if name in UPSTREAM_ENV:
                return UPSTREAM_ENV[name]
            return interpolate(match.group(2) or "")
        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def _env(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return dict(item.split("=", 1) for item in value)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in (value or {}).items()}


def _deps(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return dict.fromkeys(value, "started")
    return {k: v if isinstance(v, str) else CONDITIONS[(v or {}).get("condition", "service_started")]
            for k, v in (value or {}).items()}  # (already normalized when merged)


def _volume_target(spec: str) -> str:
    parts = spec.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of the service it extends, as compose merges them."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "environment":
            out[key] = {**_env(out.get(key)), **_env(value)}
        elif key == "depends_on":
            out[key] = {**_deps(out.get(key)), **_deps(value)}
        elif key == "volumes":
            merged = {_volume_target(v): v for v in out.get(key, [])}
            merged.update({_volume_target(v): v for v in value})
            out[key] = list(merged.values())
        elif key != "extends":
            out[key] = copy.deepcopy(value)
    return out


def upstream_services() -> tuple[dict[str, dict], set[str]]:
    """The hobby file's services, each merged over its base service and interpolated; and the services whose base
    definition the vendored base copy lacks (only what the hobby file itself says of them is known)."""
    hobby = yaml.safe_load(HOBBY.read_text())["services"]
    base = yaml.safe_load(BASE.read_text())["services"]
    services, partial = {}, set()
    for name, spec in hobby.items():
        extends = spec.get("extends")
        if extends and extends["service"] not in base:
            partial.add(name)
        merged = _merge(base.get(extends["service"], {}), spec) if extends else copy.deepcopy(spec)
        services[name] = interpolate(merged)
    return services, partial


def upstream_routes() -> dict[str, str]:
    """The Caddyfile the base file embeds: path pattern -> ``service:port`` (``*``: the catch-all)."""
    caddy = yaml.safe_load(BASE.read_text())["services"]["proxy"]["environment"]["CADDYFILE"]
    matchers: dict[str, list[str]] = {}
    for name, body in re.findall(r"@([\w-]+)\s*\{([^{}]*)\}", caddy):
        paths = re.findall(r"^\s*path\s+(\S+)\s*$", body, re.M)
        if paths:  # a matcher's definition (a handle block that names it has no path lines)
            matchers[name] = paths
    table = {}
    for matcher, target in re.findall(r"handle\s*(?:@([\w-]+))?\s*\{[^{}]*?reverse_proxy\s+(\S+)", caddy):
        for path in matchers[matcher] if matcher else ["*"]:
            table.setdefault(path, target)  # the first handle that names a path wins
    return table


# -- ours ----------------------------------------------------------------------------------------------------------
def our_routes(routes) -> dict[str, str]:
    """The stack's routes in Caddy's path patterns: a prefix p matches p, p/ and p/*; a path only itself."""
    table = {}
    for route in sorted(routes, key=lambda r: -r.priority):
        target = f"{route.service}:{route.port}"
        for prefix in route.prefixes:
            for pattern in (prefix, f"{prefix}/", f"{prefix}/*"):
                table.setdefault(pattern, target)
        for path in route.paths:
            table.setdefault(path, target)
        if not route.prefixes and not route.paths:
            table.setdefault("*", target)
    return table


# -- the comparison ------------------------------------------------------------------------------------------------
def _image_name(image: str, mirror: str = "") -> str:
    image = image.removeprefix(mirror).split("@", 1)[0]
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def _words(value: Any) -> list[str] | None:
    if value is None:
        return None
    words = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    return [w.replace("$$", "$") for w in words]


def _seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ms|s|m|h)", value):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def _health(check: dict | None, ours: bool) -> dict | None:
    if not check:
        return None
    test = check.get("test")
    test = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    if ours:
        test = [part.replace("$$", "$") for part in test]
    facts = {"test": test}
    for key, default in COMPOSE_HEALTH_DEFAULTS.items():
        raw = check.get(key, default)
        facts[key] = raw if key == "retries" else _seconds(raw)
    return facts


def _mounts(volumes: list[str], upstream_root: str) -> dict[str, str]:
    """container path -> what is mounted there (an upstream file by its path in a checkout, a named volume, a
    client file by name, or an anonymous volume)."""
    out = {}
    for spec in volumes or []:
        parts = spec.split(":")
        if len(parts) == 1:
            out[parts[0]] = "(anonymous volume)"
            continue
        source, target = parts[0], parts[1]
        if upstream_root and source.startswith(upstream_root):
            source = "upstream:" + source.removeprefix(upstream_root).lstrip("/")
        elif source.startswith(CHECKOUT):
            source = "upstream:" + source.removeprefix(CHECKOUT)
        out[target] = source
    return out


def differences(ours: dict[str, dict], routes, *, upstream_root: str, mirror: str = "") -> list[Difference]:
    """Every fact of upstream's hobby deployment that our compose document (``ours``) does not reproduce."""
    up, partial = upstream_services()
    diffs: list[Difference] = []
    add = lambda *a: diffs.append(Difference(*(str(x) for x in a)))  # noqa: E731
    for name in sorted(partial & set(ours)):
        add(name, "base", "", "not in the vendored base copy", "only the hobby file's own facts compared")
    for name in sorted(set(up) - set(ours)):
        add(name, "service", "", "present", "absent")
    for name in sorted(set(ours) - set(up)):
        add(name, "service", "", "absent", "present")
    for name in sorted(set(up) & set(ours)):
        u, o = up[name], ours[name]
        def keys(up_side: dict, our_side: dict) -> list[str]:  # of a partially known service: upstream's own only
            return sorted(up_side if name in partial else set(up_side) | set(our_side))

        if "image" in u and _image_name(u["image"]) != _image_name(o["image"], mirror):
            add(name, "image", "", _image_name(u["image"]), _image_name(o["image"], mirror))
        for aspect in ("command", "entrypoint"):
            if (aspect in u or name not in partial) and _words(u.get(aspect)) != _words(o.get(aspect)):
                add(name, aspect, "", _words(u.get(aspect)), _words(o.get(aspect)))
        ue, oe = _env(u.get("environment")), o.get("environment", {})
        for key in keys(ue, oe):
            if key not in oe:
                add(name, "env-missing", key, ue[key], "(unset)")
            elif key not in ue:
                add(name, "env-extra", key, "(unset)", oe[key])
            elif ue[key] != str(oe[key]):
                add(name, "env-value", key, ue[key], oe[key])
        um, om = _mounts(u.get("volumes"), upstream_root), _mounts(o.get("volumes"), upstream_root)
        for target in keys(um, om):
            if um.get(target) != om.get(target):
                add(name, "mount", target, um.get(target, "(none)"), om.get(target, "(none)"))
        ud, od = _deps(u.get("depends_on")), {k: CONDITIONS[v["condition"]] for k, v in
                                             (o.get("depends_on") or {}).items()}
        for dep in keys(ud, od):
            if ud.get(dep) != od.get(dep):
                add(name, "depends_on", dep, ud.get(dep, "(none)"), od.get(dep, "(none)"))
        uh, oh = _health(u.get("healthcheck"), False), _health(o.get("healthcheck"), True)
        if uh != oh and ("healthcheck" in u or name not in partial):
            for key in ("test", *COMPOSE_HEALTH_DEFAULTS):
                if (uh or {}).get(key) != (oh or {}).get(key):
                    add(name, "healthcheck", key, (uh or {}).get(key, "(none)"), (oh or {}).get(key, "(none)"))
        if sorted(u.get("ports", [])) != sorted(o.get("ports", [])):
            add(name, "ports", "", sorted(u.get("ports", [])), sorted(o.get("ports", [])))
        limits = {k: o[k] for k in ("mem_limit", "memswap_limit", "cpus", "mem_reservation") if k in o}
        limits.update((o.get("deploy") or {}).get("resources") or {})
        upstream_limits = (u.get("deploy") or {}).get("resources") or {}
        if limits != upstream_limits:
            add(name, "resources", "", upstream_limits, limits)
    up_routes, our_table = upstream_routes(), our_routes(routes)
    for pattern in sorted(set(up_routes) | set(our_table)):
        if up_routes.get(pattern) != our_table.get(pattern):
            add("proxy", "route", pattern, up_routes.get(pattern, "(none)"), our_table.get(pattern, "(none)"))
    return sorted(set(diffs))
