"""Every service of every first-party component (PostHog, Keycloak with the SSO gate it adds to a protected stack,
the dashboard, the edge) is bounded and watched: a memory limit, a pids limit and a health check -- or it is on
the exception list below with the reason it cannot have one, and the reason is checked where it can be (a one-shot
job; a PostHog service upstream's own stack gives no health check, read from upstream's vendored compose files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.keycloak.tests.test_keycloak_gate import keycloak_installed

UPSTREAM = Path(__file__).parents[1] / "components" / "posthog" / "tests" / "data" / "posthog-upstream"

#: (component, service) -> why it has no health check
NO_HEALTHCHECK_JOB = "a one-shot job: it runs to completion (readiness is its exit code 0), nothing to watch"
NO_HEALTHCHECK_UPSTREAM = ("PostHog's stack is upstream's hobby stack as data, and upstream gives this service no "
                           "health check; PostHog's health is its /_health probe through the edge (Stack.probes)")
JOBS = {("posthog", "kafka-init"), ("posthog", "migrate")}
UPSTREAM_UNCHECKED = {"zookeeper", "web", "worker", "temporal-django-worker", "plugins", "ingestion-general",
                      "ingestion-sessionreplay", "recording-api", "ingestion-error-tracking", "ingestion-logs",
                      "ingestion-traces", "capture", "replay-capture", "capture-logs", "property-defs-rs",
                      "property-defs-ai", "personhog-replica", "personhog-router", "cymbal", "cymbal-resolution",
                      "livestream", "browserless", "temporal-admin-tools", "temporal-ui"}
EXCEPTIONS = {**{key: NO_HEALTHCHECK_JOB for key in JOBS},
              **{("posthog", name): NO_HEALTHCHECK_UPSTREAM for name in UPSTREAM_UNCHECKED}}


@pytest.fixture
def stacks(agencystack_plugins, agencystack_env, monkeypatch):
    """Each first-party component's stack as ``plan`` builds it, PostHog's with the SSO gate in it."""
    monkeypatch.setenv("DOMAIN", "localhost")
    monkeypatch.setattr("agencystack.sso.edge_addresses", lambda context: ("10.9.0.2",))
    keycloak_installed(agencystack_env, {"SSO_CLIENT_SECRET": "x" * 20, "SSO_COOKIE_SECRET": "y" * 32})
    from agencystack.testing import open_context

    found = {}
    for component in ("posthog", "keycloak", "dashboard", "edge"):
        context = open_context(agencystack_plugins, component, "plan", client=None if component == "edge" else "acme")
        found[component] = context.stack()
    assert "sso-proxy" in {s.name for s in found["posthog"].services}
    return found


def test_every_service_has_a_memory_limit_a_pids_limit_and_a_health_check_or_a_stated_reason(stacks):
    missing = []
    for component, stack in stacks.items():
        for service in stack.services:
            limits = service.limits
            if limits is None or limits.memory is None or limits.pids is None:
                missing.append(f"{component}/{service.name}: no memory or pids limit")
            if service.healthcheck is None and (component, service.name) not in EXCEPTIONS:
                missing.append(f"{component}/{service.name}: no health check and no stated reason")
    assert not missing, missing


def test_the_exceptions_hold(stacks):
    """Every exception names a real service that indeed has no health check, for the reason given: jobs are jobs,
    and upstream's compose files define no health check for the PostHog services listed."""
    services = {(c, s.name): s for c, stack in stacks.items() for s in stack.services}
    for key, reason in EXCEPTIONS.items():
        assert key in services, f"exception for a service that does not exist: {key}"
        assert services[key].healthcheck is None, f"{key} has a health check now: drop its exception"
        assert services[key].job == (reason == NO_HEALTHCHECK_JOB), key
    upstream = {}
    for name in ("docker-compose.base.yml", "docker-compose.hobby.yml"):
        for service, spec in (yaml.safe_load((UPSTREAM / name).read_text())["services"] or {}).items():
            upstream.setdefault(service, []).append(spec or {})
    for name in UPSTREAM_UNCHECKED:
        assert not any("healthcheck" in spec for spec in upstream.get(name, [])), name


def test_the_gate_is_checked_on_oauth2_proxys_ping_with_busybox_wget(stacks):
    """The gate's health check runs oauth2-proxy's /ping with wget: busybox's, which the test image (busybox) and
    upstream's -alpine images (the default KEYCLOAK_OAUTH2_PROXY_IMAGE) have; upstream's plain image has no tool."""
    gate = stacks["posthog"].service("sso-proxy")
    assert gate.healthcheck.test == ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:4180/ping"]
    assert gate.image.endswith("-alpine")
    assert gate.limits.cpus and gate.limits.memory_reservation
