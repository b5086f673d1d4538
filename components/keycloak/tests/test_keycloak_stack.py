"""Keycloak ships as its own distribution: discovered through its entry point, settings generated once, stack valid.

The real Keycloak image cannot be pulled here (no registry); its SSO behaviour comes with the SSO issue. What is
tested here needs no engine.
"""

from __future__ import annotations

from agencystack.testing import compose_file, open_context


def test_keycloak_is_a_separate_distribution(agencystack_plugins):
    record = next(r for r in agencystack_plugins.records if r.name == "keycloak")
    assert record.ok and record.distribution == "agencystack-keycloak"
    assert [c.name for c in record.components] == ["keycloak"]


def test_keycloak_stack_references_its_generated_secrets(agencystack_plugins, monkeypatch):
    monkeypatch.setenv("DOMAIN", "agency.com")
    context = open_context(agencystack_plugins, "keycloak", client="acme")
    assert context.settings.domain == "auth.acme.agency.com"  # derived defaults see <client>.<DOMAIN>
    assert {"KEYCLOAK_ADMIN_PASSWORD", "KEYCLOAK_DB_PASSWORD"} <= set(context.loaded.generated)
    stack = context.stack()
    assert {s.name for s in stack.services} == {"db", "keycloak"}
    assert stack.service("keycloak").depends_on == {"db": "healthy"}
    rendered = compose_file(context)
    for secret in context.settings.secret_values():
        assert secret not in rendered
    assert "${KEYCLOAK_ADMIN_PASSWORD}" in rendered
