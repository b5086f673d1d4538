"""Clients across several real Docker engines: placement, every later command on the client's host, fleet status
over all hosts in parallel with one host stopped, ``hosts remove`` refused while clients are placed.

The test bed's engine is the local host; each extra host is a real dockerd of its own (tests/engine/start-engine.sh
through ``private_engine``, its own run root, data root and address pool), stopped by the test that started it.
"""

from __future__ import annotations

import json
import secrets

import pytest

from agencystack.overview import NOT_IN_ROOT
from agencystack.testing import free_port
from tests.engine.helpers import private_engine, wait_until

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory, docker_client):
    base = tmp_path_factory.mktemp("engine-h2")
    with private_engine("h2", base, base / "dockerd.log", "10.234.0.0/16") as engine:
        yield engine


def _whoami(images, client: str, *extra: str) -> list[str]:
    return ["whoami", "-c", client, "--set", f"WHOAMI_IMAGE={images['busybox']}", "--set", f"WHOAMI_PORT={free_port()}",
            *extra]


def _projects(client_api, client: str) -> set[str]:
    return {c["Labels"]["com.docker.compose.project"]
            for c in client_api.containers(all=True, filters={"label": f"io.agencystack.client={client}"})}


def test_a_client_placed_on_a_host_lives_there(second_engine, with_plugins, agencystack_run, agencystack_env, images,
                                               docker_client, engine):
    client = f"p{secrets.token_hex(3)}"
    assert agencystack_run("hosts", "add", "h2", "--docker-host", second_engine.host).exit_code == 0
    try:
        installed = agencystack_run("install", *_whoami(images, client, "--host", "h2", "--set",
                                                        "WHOAMI_WEB_MEMORY=64m"))
        assert installed.exit_code == 0, installed.output
        assert _projects(second_engine.client.api, client) == {f"{client}_whoami"}
        assert _projects(docker_client.api, client) == set()  # nothing of it on the local engine
        placed = json.loads((agencystack_env / "clients" / client / "placement.json").read_text())
        assert placed["host"] == "h2"

        # every later command goes to h2 without being told
        status = agencystack_run("status", "whoami", "-c", client, "--json")
        assert status.exit_code == 0, status.output
        assert status.json()[0]["state"] == "running" and status.json()[0]["host"] == "h2"
        again = agencystack_run("install", "whoami", "-c", client)
        assert again.exit_code == 0 and "no changes" in again.stdout, again.output
        restarted = agencystack_run("restart", "whoami", "-c", client, "--service", "worker")
        assert restarted.exit_code == 0, restarted.output
        logs = agencystack_run("logs", "whoami", "-c", client, "--service", "worker", "--tail", "5")
        assert logs.exit_code == 0, logs.output
        wait_until(lambda: "tick" in agencystack_run("logs", "whoami", "-c", client, "--service", "worker",
                                                     "--tail", "5").stdout, 30, 0.5, "the worker's log lines from h2")

        # another host for a placed client is refused: moving is 'agencystack move'
        elsewhere = agencystack_run("install", "whoami", "-c", client, "--host", "local")
        assert elsewhere.exit_code == 2 and "agencystack move" in elsewhere.stderr

        listed = agencystack_run("hosts", "list", "--json")
        rows = {r["name"]: r for r in listed.json()}
        assert rows["h2"]["reachable"] and client in rows["h2"]["clients"] and rows["h2"]["engine_version"]
        assert rows["h2"]["committed_memory"] > 0 and rows["h2"]["free_memory"] < rows["h2"]["memory"]

        refused = agencystack_run("hosts", "remove", "h2")
        assert refused.exit_code == 2 and client in refused.stderr

        gone = agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")
        assert gone.exit_code == 0, gone.output
        assert _projects(second_engine.client.api, client) == set()
        assert agencystack_run("hosts", "remove", "h2").exit_code == 0
    finally:
        agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")


def test_a_new_client_goes_to_the_host_with_the_most_free_memory(second_engine, with_plugins, agencystack_run,
                                                                 images, docker_client, engine):
    big, new = f"b{secrets.token_hex(3)}", f"n{secrets.token_hex(3)}"
    assert agencystack_run("hosts", "add", "h2", "--docker-host", second_engine.host).exit_code == 0
    rows = {r["name"]: r for r in agencystack_run("hosts", "list", "--json").json()}
    # take most of the local engine's free memory with one client's limits, placed there explicitly
    limit = max(int((rows["local"]["free_memory"] - rows["h2"]["free_memory"]) / 2**20) + 4096, 4096)
    try:
        first = agencystack_run("install", *_whoami(images, big, "--host", "local", "--set",
                                                    f"WHOAMI_WEB_MEMORY={limit}m"))
        assert first.exit_code == 0, first.output
        auto = agencystack_run("install", *_whoami(images, new))
        assert auto.exit_code == 0, auto.output
        assert _projects(second_engine.client.api, new) == {f"{new}_whoami"}
        assert agencystack_run("status", "whoami", "-c", new, "--json").json()[0]["host"] == "h2"
    finally:
        for client in (big, new):
            agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")


def test_fleet_status_asks_every_host_and_reports_a_stopped_one(second_engine, with_plugins, agencystack_run, images,
                                                                docker_client, engine, tmp_path):
    here, there, gone = (f"{p}{secrets.token_hex(3)}" for p in "lrg")
    assert agencystack_run("hosts", "add", "h2", "--docker-host", second_engine.host).exit_code == 0
    try:
        with private_engine("h3", tmp_path / "h3", tmp_path / "h3.log", "10.235.0.0/16") as third:
            assert agencystack_run("hosts", "add", "h3", "--docker-host", third.host).exit_code == 0
            for client, host in ((here, "local"), (there, "h2"), (gone, "h3")):
                result = agencystack_run("install", *_whoami(images, client, "--host", host))
                assert result.exit_code == 0, result.output
            every = agencystack_run("status", "--all", "--json")
            assert every.exit_code == 0, every.output
            states = {(r["host"], r["client"]): r["state"] for r in every.json()}
            assert {states[("local", here)], states[("h2", there)], states[("h3", gone)]} == {"running"}
        # h3's engine is stopped now: reported as such, the others still answer
        every = agencystack_run("status", "--all", "--json")
        assert every.exit_code == 1  # a failed row
        rows = {(r["host"], r["client"]): r for r in every.json()}
        assert rows[("local", here)]["state"] == "running" and rows[("h2", there)]["state"] == "running"
        assert rows[("h3", gone)]["state"] == "failed" and "host h3 unreachable" in rows[("h3", gone)]["message"]
        table = agencystack_run("status", "--all")
        assert "unreachable" in table.stdout and "HOST" in table.stdout

        only = agencystack_run("status", "--all", "--host", "h2", "--json")
        assert only.exit_code == 0, only.output
        assert {(r["host"], r["client"]) for r in only.json() if r["client"] in (here, there, gone)} == {("h2", there)}
        listed = {r["name"]: r for r in agencystack_run("hosts", "list", "--json").json()}
        assert listed["h3"]["reachable"] is False and listed["h2"]["reachable"] is True
    finally:
        for client in (here, there):
            agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")


def test_each_host_runs_its_own_edge(second_engine, with_plugins, agencystack_run, images, engine):
    """The edge of h2 (client ``host-h2``, h2's engine, its own ports) routes the clients placed on h2."""
    from tests.helpers import request, set_args
    from tests.images import build as _build

    _build.ensure_images(second_engine.client, only=["busybox", "postgres", "traefik"])
    client = f"e{secrets.token_hex(3)}"
    http_port = free_port()
    assert agencystack_run("hosts", "add", "h2", "--docker-host", second_engine.host).exit_code == 0
    edge = {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "EDGE_HTTP_PORT": http_port,
            "EDGE_HTTPS_PORT": free_port(), "EDGE_BIND_ADDRESS": "127.0.0.1", "EDGE_ACME_EMAIL": "ops@agencystack.test"}
    try:
        installed = agencystack_run("install", "edge", "--host", "h2", *set_args(edge))
        assert installed.exit_code == 0, installed.output
        assert second_engine.client.containers.get("host-h2_edge-traefik-1").status == "running"
        notes = agencystack_run("install", "notes", "-c", client, "--host", "h2", "--domain", f"{client}.example.test",
                                "--set", "NOTES_TITLE=on-h2")
        assert notes.exit_code == 0, notes.output
        wait_until(lambda: request(http_port, f"{client}.example.test", "/")[0] == 200, 60, 0.5, "routed by h2's edge")
        assert "on-h2" in request(http_port, f"{client}.example.test", "/")[2]
        # this root's rows only: status --all also lists the engines' projects another root owns (another test's
        # edge on the shared local engine), marked so
        every = {(r["host"], r["client"], r["component"]): r["state"]
                 for r in agencystack_run("status", "--all", "--json").json()
                 if r.get("message") != NOT_IN_ROOT}
        assert every[("h2", "host-h2", "edge")] == "running" and every[("h2", client, "notes")] == "running"
        assert not any(host == "local" and component == "edge" for host, _, component in every), every
    finally:
        agencystack_run("uninstall", "notes", "-c", client, "--purge", "--yes")
        agencystack_run("uninstall", "edge", "--host", "h2", "--purge", "--yes")
        for network in second_engine.client.networks.list(names=["agencystack_edge"]):
            network.remove()
