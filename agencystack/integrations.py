"""Named contracts between components (Juju's "integrations"): what one side asks and the other provides.

* SSO: a component's route asks for single sign-on; the identity provider's ``sso_protect`` hook answers with an
  :class:`SsoGrant` for the :class:`SsoApplication`.
* Dashboard: every component describes itself with :class:`DashboardEntry` objects from ``dashboard_entries``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agencystack.component import Component
    from agencystack.settings import ComponentSettings, GlobalSettings


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


class SsoAdmin(Protocol):
    """What an identity provider's ``sso_admin`` answers: its people and secrets, for ``agencystack sso``."""

    def list_users(self) -> list[dict[str, Any]]:
        """Every user of the client's realm: ``username``, ``email``, ``enabled``."""
        ...

    def add_user(self, email: str, *, temporary: bool) -> str:
        """Create a user; returns the new password (shown once by the CLI, never logged)."""
        ...

    def remove_user(self, email: str) -> bool:
        """Remove a user; False when there was none."""
        ...

    def rotate(self, component: str) -> None:
        """A new client secret for that component's OIDC client."""
        ...


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
    code: str = ""  # a snippet shown ready to copy (e.g. PostHog's posthog.init), never a secret
    #: what the dashboard's server fetches for this tile, server-side and cached (e.g. PostHog's usage figures:
    #: ``kind``, the API's URLs, the request, the figures' labels, and ``credential``: the name of the secret it
    #: sends). Published in the document: never a secret value (see docs/dashboard.md)
    usage: dict[str, Any] | None = None
    #: secret values that fetch needs, by name (e.g. ``{"POSTHOG_PERSONAL_API_KEY": "phx_..."}``). Never published:
    #: the core writes them only into the client's dashboard credentials file (StateRoot.dashboard_credentials)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: the version of the product the component runs, as an operator names it (Keycloak's ``26.7.3``, the short
    #: commit PostHog is pinned to), computed from the settings (e.g. the image tag): the card shows it instead of
    #: the plugin distribution's version. Empty: the component states none (the card shows the plugin's)
    product_version: str = ""


@dataclass(frozen=True)
class DashboardContext:
    """What ``dashboard_entries`` receives: one installed component of one client, read-only.

    ``client``; ``component`` (its :class:`~agencystack.Component`); ``settings`` (its loaded settings: a copy,
    secrets included -- never put a secret into an entry); ``manifest`` (its manifest.json as a read-only mapping:
    version, images, last action, facts such as ``sso``); ``url`` (where users reach it, or None);
    ``installed`` (the names of the components installed for the client); ``edge_origin`` (the scheme and ports
    this host's edge publishes: ``network``, ``http_port``, ``https_port``; empty when unknown). Methods:
    ``installed_components()``, ``public_url(host, path)``. A plugin never reads files itself.

    Deprecated (since plugin API 1.1.0, removed in 2.0.0): ``base``, the global settings, which the Nov-27 broadcast
    contract's context carried; reading it warns, and the core then keeps only the entries for ``component``.
    """

    client: str
    component: Component
    settings: ComponentSettings  # a copy
    manifest: Mapping[str, Any]
    url: str | None = None
    installed: tuple[str, ...] = ()
    edge_origin: Mapping[str, Any] = field(default_factory=dict)  # scheme/ports the host's edge publishes
    _global_settings: GlobalSettings | None = field(default=None, repr=False, compare=False)
    _deprecated_reads: list[str] = field(default_factory=list, repr=False, compare=False)  # what a plugin read

    def installed_components(self) -> list[str]:
        """The components installed for this client (as :meth:`LifecycleContext.installed_components`)."""
        return list(self.installed)

    def public_url(self, host: str, path: str = "/") -> str:
        """``host`` + ``path`` as users reach it through this host's edge (as :meth:`LifecycleContext.public_url`)."""
        from agencystack.edge.routing import Edge, public_url

        return public_url(f"http://{host}{path}", Edge(**self.edge_origin)) if self.edge_origin else \
            f"http://{host}{path}"

    @property
    def base(self) -> GlobalSettings:
        """Deprecated: the global settings (the Nov-27 contract's context of the client carried them)."""
        from agencystack import deprecations

        deprecations.warn("DashboardContext.base")
        self._deprecated_reads.append("base")
        if self._global_settings is not None:
            return self._global_settings
        from agencystack.settings import GlobalSettings

        return GlobalSettings.load()
