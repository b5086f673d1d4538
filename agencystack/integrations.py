"""Named contracts between components (Juju's "integrations"): what one side asks and the other provides.

* SSO: a component's route asks for single sign-on; the identity provider's ``sso_protect`` hook answers with an
  :class:`SsoGrant` for the :class:`SsoApplication`.
* Dashboard: every component describes itself with :class:`DashboardEntry` objects from ``dashboard_entries``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SsoApplication:
    """What a component asks of the identity provider for one of its hosts."""

    client: str  # the tenant
    component: str
    host: str  # the public host name the application is served on
    redirect_path: str = "/oauth2/callback"
    roles: tuple[str, ...] = ()  # optional realm roles allowed in (empty: any authenticated user)
    url: str = ""  # the public origin as the edge serves it (scheme, host, published port), e.g. https://x.com
    #: the addresses the host's edge connects from on its network (Traefik's container): the only peers a gate may
    #: take X-Forwarded-* from. Empty when unknown (render: no engine; the edge not running): trust no one then.
    edge_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class SsoGrant:
    """What the identity provider gives back; secrets are named by .env key, never carried as values."""

    issuer_url: str
    client_id: str
    client_secret_key: str  # the key holding the client secret in the protected deployment's env (add_env)
    forward_auth_url: str  # where Traefik's forwardAuth middleware sends each request
    middleware: str  # the Traefik middleware name to attach to protected routers
    state: str = "protected"  # or "pending": the provider is installed but the client is not converged yet
    detail: str = ""  # one line for status (why pending)


#: SSO states as plan, install and status show them
PROTECTED, PENDING, UNPROTECTED, DISABLED = "protected", "pending", "unprotected", "disabled"


@dataclass
class SsoState:
    """What became of a stack's request for SSO (``LifecycleContext.sso``)."""

    state: str  # PROTECTED | PENDING | UNPROTECTED | DISABLED
    detail: str = ""
    routes: tuple[str, ...] = ()  # the routes that asked for SSO
    provider: str = ""


@dataclass(frozen=True)
class DashboardEntry:
    """One tile on the agency dashboard."""

    client: str
    component: str
    title: str
    url: str | None = None
    description: str = ""
    links: dict[str, str] = field(default_factory=dict)  # label -> URL (admin console, docs, ...)
