"""The edge as a component: per-host state, settings, Traefik's static configuration (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agencystack import UsageError, names
from agencystack.context import LifecycleContext
from agencystack.edge.settings import EdgeSettings
from agencystack.edge.traefik import build, command
from agencystack.settings import GlobalSettings
from agencystack.testing import open_context


def _open(plugins, component, **kw) -> LifecycleContext:
    return open_context(plugins, component, "plan", **kw)


def test_edge_is_a_core_per_host_component(agencystack_plugins):
    edge = agencystack_plugins.component("edge")
    assert edge.per_host
    record = next(r for r in agencystack_plugins.records if r.name == "agencystack.edge")
    assert record.core and record.ok


def test_per_host_state_lives_under_the_reserved_client(agencystack_plugins, agencystack_env: Path):
    ctx = _open(agencystack_plugins, "edge", client="acme")
    assert ctx.client == names.HOST == "host"
    assert ctx.project == "host_edge"
    assert ctx.dir.path == agencystack_env / "clients" / "host" / "edge"


def test_reserved_client_id_is_refused_for_tenants(agencystack_plugins):
    with pytest.raises(UsageError, match="reserved"):
        _open(agencystack_plugins, "posthog", client="host")


def test_cli_refuses_the_reserved_client(agencystack_run):
    result = agencystack_run("plan", "posthog", "--client-id", "host")
    assert result.exit_code == 2 and "reserved" in result.stderr


def test_settings_defaults_and_socket_from_docker_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/x/docker.sock")
    from agencystack import settings

    loaded = settings.load(EdgeSettings, GlobalSettings.load(), Path("/nonexistent/.env"))
    s = loaded.values
    assert (s.image, s.http_port, s.https_port, s.network) == ("traefik:v3.6", 80, 443, "agencystack_edge")
    assert s.docker_socket == "/run/x/docker.sock"


@pytest.mark.parametrize("value", ["edge", "host_edge", "agencystack_", "agencystack_a_b", "agencystack_Edge"])
def test_network_name_must_be_owned_by_the_agencystack_project(value):
    with pytest.raises(ValueError):
        EdgeSettings(network=value)


def test_acme_email_is_checked():
    assert EdgeSettings(acme_email="ops@acme.com").acme_email == "ops@acme.com"
    with pytest.raises(ValueError):
        EdgeSettings(acme_email="not an email")


def test_static_configuration():
    s = EdgeSettings(acme_email="ops@acme.com", network="agencystack_edge-x")
    flags = command(s)
    assert "--providers.docker.exposedbydefault=false" in flags
    assert "--providers.docker.network=agencystack_edge-x" in flags
    assert "--providers.docker.constraints=Label(`traefik.docker.network`,`agencystack_edge-x`)" in flags
    assert "--entrypoints.web.address=:80" in flags and "--entrypoints.websecure.address=:443" in flags
    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in flags
    assert "--entrypoints.web.http.redirections.entrypoint.priority=1" in flags
    assert "--certificatesresolvers.letsencrypt.acme.email=ops@acme.com" in flags
    assert "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web" in flags
    assert "--ping=true" in flags
    assert not any("caserver" in f for f in flags)
    # a published HTTPS port other than 443 stays in the redirect
    assert "--entrypoints.web.http.redirections.entrypoint.to=:8443" in command(EdgeSettings(https_port=8443))
    assert not any("acme.email" in f for f in command(EdgeSettings()))


def test_stack_socket_read_only_ports_and_health():
    stack = build(EdgeSettings(http_port=18080, https_port=18443, bind_address="127.0.0.1"))
    (traefik,) = stack.services
    socket = next(m for m in traefik.volumes if m.target == "/var/run/docker.sock")
    assert socket.read_only and socket.source == "/var/run/docker.sock"
    assert [(p.host_ip, p.host, p.container) for p in traefik.ports] == [("127.0.0.1", 18080, 80),
                                                                          ("127.0.0.1", 18443, 443)]
    assert traefik.healthcheck.test == ["CMD", "traefik", "healthcheck", "--ping"]
    assert stack.network("agencystack_edge").external
    assert traefik.networks == {"agencystack_edge": []}
