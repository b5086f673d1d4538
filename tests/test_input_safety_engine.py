"""On the real engine: a setting's value reaches the container literally (``$`` and all), an exit 2 of an installed
component rewrites nothing, a client never installed gets no directory, and ``uninstall edge --purge`` takes the
edge network with it when nothing else is attached."""

from __future__ import annotations

import json
import secrets

import pytest

from agencystack.testing import free_port, run_cli
from tests.helpers import edge_container, remove_network, set_args, state_hash, use_test_engine
from tests.test_cli_engine import containers, whoami  # noqa: F401 - the fixture, as that module installs whoami

pytestmark = pytest.mark.engine

TITLE = "${WHOAMI_API_KEY} $(touch /tmp/x) $HOME `id`"


def test_a_settings_dollar_signs_reach_the_container_literally(whoami, agencystack_run, agencystack_env,  # noqa: F811
                                                                docker_client):
    client, project = whoami["client"], whoami["project"]
    done = agencystack_run("install", "whoami", *whoami["args"], "--set", f"WHOAMI_MESSAGE={TITLE}")
    assert done.exit_code == 0, done.output
    saved = (agencystack_env / "clients" / client / "whoami" / ".env").read_text()
    key = next(line.split("=", 1)[1] for line in saved.splitlines() if line.startswith("WHOAMI_API_KEY="))
    running = containers(docker_client, project)
    for service in ("web", "worker"):
        env = dict(item.split("=", 1) for item in running[service].attrs["Config"]["Env"])
        assert env["MESSAGE"] == TITLE, service  # what docker inspect shows: the characters given
        assert key not in env["MESSAGE"]
    web_env = dict(item.split("=", 1) for item in running["web"].attrs["Config"]["Env"])
    assert web_env["API_KEY"] == key  # the component's own ref() still resolves
    # inside: the environment holds the title; nothing in it ran
    assert running["web"].exec_run(["sh", "-c", 'printf %s "$MESSAGE"']).output.decode() == TITLE
    assert running["worker"].exec_run(["test", "-e", "/tmp/x"]).exit_code != 0
    compose = (agencystack_env / "clients" / client / "whoami" / "compose.yaml").read_text()
    assert "MESSAGE: $${WHOAMI_API_KEY} $$(touch /tmp/x) $$HOME `id`" in compose and key not in compose
    again = agencystack_run("install", "whoami", "-c", client)
    assert again.exit_code == 0 and "no changes" in again.stdout  # the escaped value's hash is stable

    # exit 2 on an installed component: its manifest, the dashboard document, the logs stay as they are
    roots = (agencystack_env, agencystack_env.parent / "log")
    before = state_hash(*roots)
    ghost = agencystack_run("restart", "whoami", "-c", client, "--service", "ghost")
    assert ghost.exit_code == 2 and "unknown service(s) ghost" in ghost.stderr, ghost.output
    assert state_hash(*roots) == before


def test_uninstall_of_a_client_never_installed_creates_nothing_for_it(with_plugins, agencystack_run,
                                                                       agencystack_env, engine):
    never = f"n{secrets.token_hex(4)}"
    done = agencystack_run("uninstall", "whoami", "-c", never)
    assert done.exit_code == 0 and "not installed" in done.stdout, done.output
    for argv in (["status", "whoami"], ["restart", "whoami"], ["uninstall", "whoami", "--purge", "--yes"],
                 ["backup", "whoami"], ["logs", "whoami"], ["plan", "whoami"], ["settings", "show", "whoami"]):
        agencystack_run(*argv, "-c", never)
    assert not (agencystack_env / "clients" / never).exists()
    assert not (agencystack_env / "dashboards" / never).exists()


@pytest.fixture
def own_edge(with_plugins, tmp_path, images, engine, monkeypatch):
    """An edge of this test's own (host namespace, network, loopback ports): never the host's real one."""
    network = f"agencystack_edge-p{secrets.token_hex(4)}"
    use_test_engine(monkeypatch, tmp_path / "root")
    monkeypatch.setenv("AGENCYSTACK_HOST_NAMESPACE", f"p{secrets.token_hex(4)}")
    sets = {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "EDGE_HTTP_PORT": free_port(),
            "EDGE_HTTPS_PORT": free_port(), "EDGE_BIND_ADDRESS": "127.0.0.1", "EDGE_NETWORK": network}
    done = run_cli("install", "edge", *set_args(sets))
    assert done.exit_code == 0, done.output
    yield network
    run_cli("uninstall", "edge", "--purge", "--yes")
    remove_network(network)


def test_uninstall_edge_purge_removes_its_network_when_nothing_else_is_attached(own_edge, docker_client):
    import docker

    assert docker_client.networks.get(own_edge)
    done = run_cli("uninstall", "edge", "--purge", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["details"]["network_removed"] == own_edge
    with pytest.raises(docker.errors.NotFound):
        docker_client.networks.get(own_edge)


def test_uninstall_edge_purge_keeps_its_network_while_a_container_is_attached(own_edge, docker_client, images):
    import os

    tenant = docker_client.containers.run(images["busybox"], ["sleep", "600"], network=own_edge, detach=True,
                                          name=f"tenant-{secrets.token_hex(4)}")
    try:
        done = run_cli("uninstall", "edge", "--purge", "--yes")
        assert done.exit_code == 0, done.output
        assert f"network {own_edge} kept: 1 container(s) still attached ({tenant.name})" in done.stdout
        assert docker_client.networks.get(own_edge)  # the tenant is not cut off
        traefik = edge_container(os.environ["AGENCYSTACK_HOST_NAMESPACE"])
        assert not docker_client.containers.list(all=True, filters={"name": traefik})
    finally:
        tenant.remove(force=True)
