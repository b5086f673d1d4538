"""What PostHog's and Keycloak's plugins put on the agency dashboard, from the typed context only: PostHog's
analytics overview (ingestion host, a ready-to-paste posthog.init snippet, project settings), Keycloak's console."""

from __future__ import annotations

from types import MappingProxyType

from agencystack import DashboardContext


def _context(agencystack_context, agencystack_plugins, component: str) -> DashboardContext:
    loaded = agencystack_context(component, client="acme")
    return DashboardContext(client="acme", component=agencystack_plugins.component(component),
                            settings=loaded.settings, manifest=MappingProxyType({}),
                            url=loaded.public_url(loaded.settings.domain), installed=(component,))


def test_posthog_card_has_the_ingestion_host_and_a_snippet(agencystack_context, agencystack_plugins):
    context = _context(agencystack_context, agencystack_plugins, "posthog")
    [entry] = agencystack_plugins.dashboard_entries(context)
    host = "http://posthog.acme.localhost"
    assert entry.title == "Product analytics" and entry.url == f"{host}/"
    assert f"Ingestion host: {host}" in entry.description
    assert f"posthog.init('<your project API key>', {{api_host: '{host}'" in entry.code
    assert entry.links["Project settings"] == f"{host}/project/settings"
    secrets = [v for v in context.settings.secret_values() if v]
    assert secrets and not any(s in repr(entry) for s in secrets)


def test_keycloak_card_links_the_admin_console_only_where_it_is_routed(agencystack_context, agencystack_plugins):
    """The admin console is not public by default (KEYCLOAK_ADMIN_PUBLIC=false): no link to a 404, the account
    page instead; with the opt-in the card links the realm's console."""
    context = _context(agencystack_context, agencystack_plugins, "keycloak")
    [entry] = agencystack_plugins.dashboard_entries(context)
    assert "Admin console" not in entry.links
    assert entry.links["Account"] == "http://auth.acme.localhost/realms/acme/account/"
    opened = context.settings.model_copy(update={"admin_public": True})
    [entry] = agencystack_plugins.dashboard_entries(DashboardContext(**{**vars(context), "settings": opened}))
    assert entry.links["Admin console"] == "http://auth.acme.localhost/admin/acme/console/"


def test_each_card_states_the_products_version_not_the_plugins(agencystack_context, agencystack_plugins):
    """The product's version (DashboardEntry.product_version), from the settings: Keycloak's image tag, the upstream
    commit PostHog is pinned to (short), the dashboard's own distribution."""
    from agencystack_keycloak.settings import VERSION
    from agencystack_posthog.settings import UPSTREAM_REF

    versions = {name: agencystack_plugins.dashboard_entries(_context(agencystack_context, agencystack_plugins, name))
                [0].product_version for name in ("keycloak", "posthog", "dashboard")}
    assert versions == {"keycloak": VERSION, "posthog": UPSTREAM_REF[:12],
                        "dashboard": agencystack_plugins.component("dashboard").version}
    assert VERSION.startswith("26.") and versions["dashboard"] == "0.1.0"


def test_keycloaks_version_is_its_images_tag_or_digest():
    from agencystack_keycloak.settings import KeycloakSettings

    def version(image: str) -> str:
        return KeycloakSettings(domain="auth.example.com", image=image).product_version()

    assert version("quay.io/keycloak/keycloak:26.7.3") == "26.7.3"
    assert version("registry.local:5000/keycloak:26.1.0-optimized") == "26.1.0-optimized"  # not the port
    assert version("registry.local:5000/keycloak") == "latest"
    assert version("quay.io/keycloak/keycloak@sha256:" + "ab" * 32) == "sha256:abababababab"
    assert version("quay.io/keycloak/keycloak:26.7.3@sha256:" + "ab" * 32) == "26.7.3"


def test_posthogs_version_names_another_app_tag_with_the_files_commit():
    from agencystack_posthog.settings import UPSTREAM_REF, PostHogSettings

    other = "1" * 40
    assert PostHogSettings(domain="p.example.com").product_version() == UPSTREAM_REF[:12]
    assert PostHogSettings(domain="p.example.com", app_tag=other).product_version() == \
        f"111111111111 (files at {UPSTREAM_REF[:12]})"
    assert PostHogSettings(domain="p.example.com", app_tag="latest").product_version() == \
        f"latest (files at {UPSTREAM_REF[:12]})"
