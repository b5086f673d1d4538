"""Routes → Traefik labels: a pure translation (no engine, no files), applied by the edge's ``modify_stack``.

The rules, in one place:

* **Router names** are ``<client>_<component>_<route>``: unique on the host, because neither a client id nor a
  component name may contain ``_`` (see :mod:`agencystack.names`); Traefik's router namespace is global.
* **Paths match exactly.** ``Route.paths`` → ``Path(`/e`)``; ``Route.prefixes`` → ``Path(`/x`) || PathPrefix(`/x/`)``
  (the path itself and everything *below* it). A bare ``PathPrefix(`/e`)`` is never emitted: it would also match
  ``/engage``, and ``PathPrefix(`/s`)`` would expose ``/settings`` and ``/signup``.
* **Priorities are explicit** (Traefik's default is the rule's length, which makes order an accident): a route's own
  ``priority`` wins; otherwise routes with paths get :data:`PATH_PRIORITY`, catch-alls :data:`CATCH_ALL_PRIORITY`.
  The edge's HTTP→HTTPS redirect sits below both (:data:`REDIRECT_PRIORITY`).
* **Prefix stripping** (``Route.strip_prefix``) is a ``stripprefix`` middleware named after the router, so it is as
  unique on the host as the router is.
* **TLS**: hosts under a development suffix (:data:`DEV_SUFFIXES`: ``localhost`` and the names reserved by RFC 2606,
  6761, 6762, 8375 and ICANN's ``.internal``) can never get a public certificate: they are served on plain HTTP
  (entrypoint ``web``, no redirect). Every other host is served on ``websecure`` with the ACME resolver; plain HTTP
  requests to it are redirected by the edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from agencystack.errors import UsageError

DEV_SUFFIXES = ("localhost", "test", "example", "invalid", "local", "internal", "home.arpa")
WEB, WEBSECURE = "web", "websecure"
RESOLVER = "letsencrypt"
PATH_PRIORITY = 100
CATCH_ALL_PRIORITY = 10
REDIRECT_PRIORITY = 1
_FORBIDDEN = set("`\"' \t\n()|&")


@dataclass(frozen=True)
class Edge:
    """What the translation needs to know about the edge: its network and its published ports."""

    network: str = "agencystack_edge"
    http_port: int = 80
    https_port: int = 443


def is_dev_host(host: str) -> bool:
    """True for hosts that are served on plain HTTP (no certificate can exist for them)."""
    host = host.lower().rstrip(".")
    return any(host == s or host.endswith("." + s) for s in DEV_SUFFIXES)


def router_name(client: str, component: str, route: str) -> str:
    return f"{client}_{component}_{route}"


def _clean(path: str, route: str) -> str:
    if not path.startswith("/") or _FORBIDDEN & set(path):
        raise UsageError(f"route {route!r}: invalid path {path!r} (must start with '/', no quotes, spaces or "
                         "rule operators)")
    return path


def rule(route) -> str:
    """The router rule: ``Host(...)``, and the route's exact paths and path subtrees."""
    matchers = [f"Path(`{_clean(p, route.name)}`)" for p in route.paths]
    for prefix in route.prefixes:
        prefix = _clean(prefix, route.name).rstrip("/")
        matchers.append("PathPrefix(`/`)" if not prefix else f"Path(`{prefix}`) || PathPrefix(`{prefix}/`)")
    host = f"Host(`{route.host}`)"
    return f"{host} && ({' || '.join(matchers)})" if matchers else host


def priority(route) -> int:
    if route.priority is not None:
        return route.priority
    return PATH_PRIORITY if route.paths or route.prefixes else CATCH_ALL_PRIORITY


def matches(route, host: str, path: str) -> bool:
    """Whether ``route``'s rule (:func:`rule`) matches a request for ``host`` + ``path``."""
    if route.host.lower() != host.lower():
        return False
    if not route.paths and not route.prefixes:
        return True
    return path in route.paths or any(
        path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in route.prefixes)


def serving(routes: Iterable, host: str, path: str):
    """The route the edge sends a request for ``host`` + ``path`` to (the highest :func:`priority` among those that
    match, the first declared on a tie), or None."""
    found = [r for r in routes if matches(r, host, path or "/")]
    return max(found, key=priority, default=None)


def route_labels(route, *, client: str, component: str) -> dict[str, str]:
    """The labels of one route (to be set on the container of ``route.service``)."""
    name = router_name(client, component, route.name)
    router = f"traefik.http.routers.{name}"
    labels = {
        f"{router}.rule": rule(route),
        f"{router}.priority": str(priority(route)),
        f"{router}.service": name,
        f"traefik.http.services.{name}.loadbalancer.server.port": str(route.port),
    }
    middlewares = list(route.middlewares)
    if route.strip_prefix:
        if not route.prefixes:
            raise UsageError(f"route {route.name!r}: strip_prefix needs prefixes to strip")
        middleware = f"{name}-strip"
        prefixes = ",".join(_clean(p, route.name).rstrip("/") for p in route.prefixes)
        labels[f"traefik.http.middlewares.{middleware}.stripprefix.prefixes"] = prefixes
        middlewares = [*middlewares, middleware]  # authentication first, then rewriting
    if middlewares:
        labels[f"{router}.middlewares"] = ",".join(middlewares)
    if is_dev_host(route.host):
        labels[f"{router}.entrypoints"] = WEB
    else:
        labels[f"{router}.entrypoints"] = WEBSECURE
        labels[f"{router}.tls"] = "true"
        labels[f"{router}.tls.certresolver"] = RESOLVER
    return labels


def labels_by_service(routes: Iterable, *, client: str, component: str, network: str) -> dict[str, dict[str, str]]:
    """Every route's labels grouped by target service, plus what enables the service on the edge network."""
    out: dict[str, dict[str, str]] = {}
    for route in routes:
        labels = out.setdefault(route.service, {"traefik.enable": "true", "traefik.docker.network": network})
        labels.update(route_labels(route, client=client, component=component))
    return out


def public_url(url: str, edge: Edge) -> str:
    """``url`` as the edge really serves it: plain HTTP for development hosts, and the published port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    scheme, port = ("http", edge.http_port) if is_dev_host(host) else ("https", edge.https_port)
    default = 80 if scheme == "http" else 443
    netloc = host if port == default else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def attach(stack, *, client: str, component: str, edge: Edge) -> None:
    """Amend ``stack`` in place: Traefik labels on routed services, the edge network (external) attached to
    them, probe URLs as the edge serves them. Idempotent: running it twice gives the same stack."""
    from agencystack.stack import Network

    if not stack.routes:
        return
    by_service: Mapping[str, dict[str, str]] = labels_by_service(stack.routes, client=client, component=component,
                                                                 network=edge.network)
    if edge.network not in {n.name for n in stack.networks}:
        stack.networks = [*stack.networks, Network(name=edge.network, external=True)]
    for service in stack.services:
        labels = by_service.get(service.name)
        if labels is None:
            continue
        service.labels = {**service.labels, **labels}
        if edge.network not in service.networks:
            service.networks = {**service.networks, edge.network: []}
    routed = {r.host for r in stack.routes}
    for probe in stack.probes:
        if urlsplit(probe.url).hostname in routed:
            probe.url = public_url(probe.url, edge)
