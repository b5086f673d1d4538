"""The SSO contract's core side (a core plugin): routes that ask for single sign-on get it, or are reported.

For every stack built (install, plan, status, backup ...), before the edge labels it (``tryfirst``):

* routes with ``sso=True`` and ``public=False`` ask for SSO; public routes (SDK ingestion) are never touched;
* a component whose settings have ``sso = False`` (``--set POSTHOG_SSO=false``) opted out: state **disabled**;
* otherwise ``sso_protect`` is broadcast once per host; the first identity provider that answers adds its gate to
  the stack and returns an :class:`~agencystack.SsoGrant`, whose middleware the core attaches to every protected
  route: state **protected**, or **pending** when the provider is installed but not converged (the middleware is
  attached all the same, so protected paths fail closed until a re-run completes it);
* the application carries the edge's addresses (:func:`edge_addresses`), so a gate takes forwarded headers
  (X-Forwarded-Host/-Uri/-Proto/-For) from the edge only, never from another container on the shared network;
* a health probe (``HttpProbe``) that a route asking for SSO serves is named in a warning at ``plan`` and
  ``install`` (:func:`gated_probes`): once a gate exists it gets the login's redirect and the install fails;
* no provider answers: state **unprotected**, a warning, and ``plan``/``install``/``status`` say so. The routes are
  served as they are: an operator who installs no identity provider keeps a reachable application.

After a protected component's deploy (install, restore), the edge is asked until it sends each protected route to
the provider's login (:func:`wait_for_gate`, called by the default install, ``defaults.deploy``): the edge applies
changed labels some time after the containers changed, and until then it may still route the old, open way;
``install`` must not say "protected" while the UI is open.

The outcome lands in ``context.sso`` (:class:`~agencystack.SsoState`), which deploy records in the manifest and
the outcome, and status shows as the ``sso`` row.
"""

from __future__ import annotations

from agencystack.markers import hookimpl

GATE_TIMEOUT = 180  # seconds the edge may take to apply a new gate (it reloads on engine events; slow when loaded)
PROBE_PATH = "/agencystack-sso-check"  # for a catch-all route: a path no public (exact-path) route claims


@hookimpl(tryfirst=True)
def modify_stack(context, stack):
    from agencystack.integrations import DISABLED, PENDING, PROTECTED, UNPROTECTED, SsoApplication, SsoState

    asking = [r for r in stack.routes if r.sso and not r.public]
    if not asking:
        return
    names = tuple(r.name for r in asking)
    previous = context.sso  # this context's stack built before (install checks it, then builds it under the lock)
    if context.action in ("install", "plan") and previous is None:  # once, at the first build
        for probe, route in gated_probes(stack):
            context.log.warning(f"{context.component.name} for {context.client}: health probe {probe.url} is served "
                                f"by route {route.name!r}, which asks for SSO: it fails (a redirect to the login) "
                                f"once a gate exists; serve the probe's path on a route of its own with public=True")
    if getattr(context.settings, "sso", True) is False:
        context.sso = SsoState(DISABLED, f"opted out ({type(context.settings).env_key('sso')}=false)", names)
        return
    grants = {}
    edge = edge_addresses(context)
    for host in dict.fromkeys(r.host for r in asking):
        application = SsoApplication(client=context.client, component=context.component.name, host=host,
                                     url=context.public_url(host).rstrip("/"), edge_addresses=edge)
        grants[host] = context.plugins.sso_protect(context, application, stack)
    if any(g is None for g in grants.values()):
        context.sso = SsoState(UNPROTECTED, f"no identity provider is installed for {context.client}: "
                                            f"route(s) {', '.join(names)} are served without login", names)
        if context.action in ("install", "plan") and previous != context.sso:  # once: a stack built again says
            context.log.warning(f"{context.component.name} for {context.client}: SSO {context.sso.detail}")
        return
    for route in asking:
        middleware = grants[route.host].middleware
        if middleware not in route.middlewares:
            route.middlewares = [middleware, *route.middlewares]
    pending = [g for g in grants.values() if g.state == PENDING]
    first = next(iter(grants.values()))
    if pending:
        context.sso = SsoState(PENDING, pending[0].detail or "identity provider not converged yet; re-run install",
                               names, first.issuer_url)
    else:
        context.sso = SsoState(PROTECTED, f"login via {first.issuer_url}", names, first.issuer_url)


def gated_probes(stack) -> list[tuple]:
    """Every (:class:`~agencystack.HttpProbe`, route) of ``stack`` whose request the edge sends to a route that asks
    for SSO (``sso=True``, not ``public``): behind a gate the probe gets the login's redirect, never its status.
    The core does not route probes around the gate (that would open the path to everyone): the component serves
    its health path on a public route, as PostHog's ``/_health``."""
    from urllib.parse import urlsplit

    from agencystack.edge.routing import serving

    found = []
    for probe in stack.probes:
        parts = urlsplit(probe.url)
        route = serving(stack.routes, parts.hostname or "", parts.path or "/")
        if route is not None and route.sso and not route.public:
            found.append((probe, route))
    return found


def edge_addresses(context) -> tuple[str, ...]:
    """The address the host's edge (Traefik) has on the edge network, as the engine reports it now; empty for
    ``render`` (no engine) or when the edge does not run. A recreated edge may get a new address: the next
    install of a protected component picks it up (until then its gate distrusts the edge's forwarded headers,
    which loses the page a login returns to, never the protection)."""
    if context.action == "render":
        return ()
    from agencystack import names
    from agencystack.edge import NAME, host_settings
    from agencystack.errors import EngineUnreachable

    network = host_settings(context.global_settings).network
    try:
        found = context.engine.addresses(names.project(context.global_settings.host_client, NAME), "traefik")
    except EngineUnreachable:  # the command itself reports the engine when it needs it
        return ()
    return tuple(address for name, address in found.items() if name == network)


def wait_for_gate(context, issuer: str, timeout: float = GATE_TIMEOUT) -> None:
    """Until the edge answers a request (no cookie) to every protected route with a redirect to ``issuer`` (the
    login), bounded by ``timeout``; progress every 20 s. ComponentError naming the last answer otherwise."""
    import time

    from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

    from agencystack.errors import ComponentError

    started = time.monotonic()

    def report(state) -> None:
        if state.attempt_number % 10 == 0:
            context.progress("sso", f"waiting for the edge to put the login in front "
                                    f"({int(time.monotonic() - started)}s, last: {state.outcome.result()})")

    for route in [r for r in context.stack().routes if r.sso and not r.public]:
        url = context.public_url(route.host, (route.paths or route.prefixes or [PROBE_PATH])[0])
        try:
            retry(retry=retry_if_result(lambda found: found != "login"), stop=stop_after_delay(timeout),
                  wait=wait_fixed(2), before_sleep=report)(_edge_answer)(url, issuer, context.edge_address)
        except RetryError as exc:
            raise ComponentError(f"{context.component.name} for {context.client}: the edge does not send {url} to "
                                 f"the login within {int(timeout)}s (last: {exc.last_attempt.result()}); re-run "
                                 f"'agencystack install {context.component.name} -c {context.client}'") from None
    context.progress("sso", f"login in front ({int(time.monotonic() - started)}s)")


def _edge_answer(url: str, issuer: str, via: str) -> str:
    """"login" when this host's edge (at ``via``) answers ``url`` with a redirect into ``issuer``; else what it
    answered (:func:`agencystack.probes.through_edge`: DNS and certificates need not be in place yet)."""
    from agencystack import probes

    try:
        status, headers, _ = probes.through_edge(url, via=via, timeout=10)
    except probes.UNANSWERED as exc:
        return type(exc).__name__
    if 300 <= status < 400 and (headers.get("Location") or "").startswith(issuer.rstrip("/") + "/"):
        return "login"
    return f"HTTP {status}" + (" (served without login)" if status == 200 else "")
