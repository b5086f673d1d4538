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


@dataclass(frozen=True)
class SsoGrant:
    """What the identity provider gives back; secrets are named by .env key, never carried as values."""

    issuer_url: str
    client_id: str
    client_secret_key: str  # the .env key (of the identity provider's component) holding the client secret
    forward_auth_url: str  # where Traefik's forwardAuth middleware sends each request
    middleware: str  # the Traefik middleware name to attach to protected routers


@dataclass(frozen=True)
class DashboardEntry:
    """One tile on the agency dashboard."""

    client: str
    component: str
    title: str
    url: str | None = None
    description: str = ""
    links: dict[str, str] = field(default_factory=dict)  # label -> URL (admin console, docs, ...)
