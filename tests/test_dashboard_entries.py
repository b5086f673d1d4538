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


def test_keycloak_card_links_the_admin_console(agencystack_context, agencystack_plugins):
    [entry] = agencystack_plugins.dashboard_entries(_context(agencystack_context, agencystack_plugins, "keycloak"))
    assert entry.links["Admin console"] == "http://auth.acme.localhost/admin/acme/console/"
