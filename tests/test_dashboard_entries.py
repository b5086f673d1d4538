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
