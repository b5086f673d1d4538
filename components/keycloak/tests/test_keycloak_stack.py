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
    assert {s.name for s in stack.services} == {"db", "retry", "keycloak"}
    assert stack.service("keycloak").depends_on == {"db": "healthy"}
    rendered = compose_file(context)
    for secret in context.settings.secret_values():
        assert secret not in rendered
    assert "${KEYCLOAK_ADMIN_PASSWORD}" in rendered


def test_the_auth_host_routes_the_clients_realm_only_unless_the_admin_surface_is_opted_in(agencystack_plugins,
                                                                                         monkeypatch):
    """By default the realm and /resources are routed, everything else on the auth host reaches Keycloak rewritten
    to a path it answers 404 (the engine test tries the spellings); KEYCLOAK_ADMIN_PUBLIC=true routes all of it."""
    monkeypatch.setenv("DOMAIN", "localhost")
    labels = open_context(agencystack_plugins, "keycloak", client="acme").stack().service("keycloak").labels
    assert labels["traefik.http.routers.acme_keycloak_keycloak.rule"] == (
        "Host(`auth.acme.localhost`) && (Path(`/realms/acme`) || PathPrefix(`/realms/acme/`) || "
        "Path(`/resources`) || PathPrefix(`/resources/`))")
    assert labels["traefik.http.routers.acme_keycloak_not-routed.rule"] == "Host(`auth.acme.localhost`)"
    assert labels["traefik.http.routers.acme_keycloak_not-routed.middlewares"] == ("acme-keycloak-restarting,"
                                                                                  "acme-keycloak-not-routed")
    assert labels["traefik.http.middlewares.acme-keycloak-not-routed.replacepath.path"] == "/agencystack/not-routed"
    opened = open_context(agencystack_plugins, "keycloak", client="acme",
                          flags={"KEYCLOAK_ADMIN_PUBLIC": "true"}).stack().service("keycloak").labels
    assert opened["traefik.http.routers.acme_keycloak_keycloak.rule"] == "Host(`auth.acme.localhost`)"
    assert not any("not-routed" in key for key in opened)


def test_the_auth_host_answers_a_retry_page_below_keycloak_and_for_its_gateway_errors(agencystack_plugins,
                                                                                     monkeypatch):
    """The retry page's route sits below Keycloak's and above the edge's redirect; Keycloak's routes (with and
    without the admin surface) answer its 500-504 with that page as a 503, reached by the retry container's name.
    (The edge's HTTP->HTTPS redirect sits at priority 1; a component test reads only public names.)"""
    monkeypatch.setenv("DOMAIN", "localhost")
    for flags in ({}, {"KEYCLOAK_ADMIN_PUBLIC": "true"}):
        stack = open_context(agencystack_plugins, "keycloak", client="acme", flags=flags).stack()
        keycloak, retry = stack.service("keycloak").labels, stack.service("retry").labels
        router = "traefik.http.routers.acme_keycloak_retry"
        assert retry[f"{router}.rule"] == "Host(`auth.acme.localhost`)"
        kc_priorities = [int(v) for k, v in keycloak.items() if k.endswith(".priority")]
        assert 1 < int(retry[f"{router}.priority"]) < min(kc_priorities)
        assert retry[f"{router}.middlewares"] == "acme-keycloak-retry-path"
        assert retry["traefik.http.middlewares.acme-keycloak-retry-path.replacepath.path"] == "/cgi-bin/retry"
        errors = "traefik.http.middlewares.acme-keycloak-restarting.errors"
        assert keycloak[f"{errors}.status"] == "500-504" and keycloak[f"{errors}.statusRewrites.500-504"] == "503"
        assert keycloak[f"{errors}.query"] == "/cgi-bin/retry"
        page = keycloak[f"{errors}.service"]
        assert keycloak[f"traefik.http.services.{page}.loadbalancer.server.url"] == "http://acme_keycloak-retry-1:8080"
        for key, value in keycloak.items():
            if key.endswith(".middlewares"):
                assert value.split(",")[0] == "acme-keycloak-restarting", key  # outermost: it sees every answer
    service = stack.service("retry")
    assert service.image == "busybox:1.37" and service.init and "$" not in " ".join(service.command)
    assert service.limits.memory and service.limits.pids and service.healthcheck


def test_session_and_lockout_settings_become_the_realm_policy_and_are_checked(agencystack_plugins, monkeypatch):
    import pytest
    from agencystack import UsageError

    monkeypatch.setenv("DOMAIN", "localhost")
    settings = open_context(agencystack_plugins, "keycloak", client="acme").settings
    policy = settings.realm_policy()
    assert policy["bruteForceProtected"] is True and policy["failureFactor"] == 5
    assert policy["waitIncrementSeconds"] == 60 and policy["maxFailureWaitSeconds"] == 900
    assert policy["ssoSessionIdleTimeout"] == 1800 and policy["ssoSessionMaxLifespan"] == 36000
    assert policy["rememberMe"] is False and settings.sso_revalidate_seconds == 60
    for bad in ({"KEYCLOAK_SSO_REVALIDATE_SECONDS": "61"},  # the promise is "within a minute"
                {"KEYCLOAK_SESSION_IDLE_SECONDS": "7200", "KEYCLOAK_SESSION_MAX_SECONDS": "3600"},
                {"KEYCLOAK_LOCKOUT_SECONDS": "600", "KEYCLOAK_MAX_LOCKOUT_SECONDS": "60"}):
        with pytest.raises(UsageError):
            open_context(agencystack_plugins, "keycloak", client="acme", flags=bad)
