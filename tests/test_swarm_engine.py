"""Clients on a real three-node Swarm (tests/swarm/testbed.sh: three dockerd, each in its own network namespace, all
managers) through the Swarm driver: the edge as a global service, install with a database and a 2-replica web,
no-op re-install, backup/purge/restore, draining a node (the client answers through the edge meanwhile), a stopped
node engine, uninstall --purge leaving nothing on any node.

What the bed cannot do (no IPVS/iptables in these engines): no service VIP and no ingress routing mesh; the driver
uses dnsrr endpoints and host-mode ports, and the edge (Traefik's Swarm provider) routes to the tasks' addresses.
Requests to the edge go to a node's address from the bed's own bridge namespace, never from the host's network.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from agencystack.engine.swarm import SwarmDriver
from agencystack.testing import run_cli, use_root
from tests.engine.helpers import engine_host, wait_until
from tests.swarm.bed import Bed, bring_up

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

SWARM = "sw"
EDGE_PORT = 8081  # the edge's HTTP port on every node (host mode, in the node's own network namespace)
BED_PREFIX = os.environ.get("AGENCYSTACK_SWARM_PREFIX", "asw")  # testbed.sh's namespaces and addresses
BED_NET = os.environ.get("AGENCYSTACK_SWARM_NET", "10.251.0")


@pytest.fixture(scope="module")
def bed(docker_client):
    found = bring_up()
    yield found
    if not os.environ.get("AGENCYSTACK_SWARM_KEEP"):  # keep it up to look at after a failure
        found.run("down")


@pytest.fixture(scope="module")
def world(bed, tmp_path_factory):
    """The module's state root and its two clients (installed by the first test that needs them)."""
    return {"root": tmp_path_factory.mktemp("swarm-root") / "agency_stack", "clients": [
        f"a{secrets.token_hex(3)}", f"b{secrets.token_hex(3)}"], "dest": tmp_path_factory.mktemp("swarm-backups")}


@pytest.fixture
def cli(world, with_plugins, monkeypatch):
    use_root(monkeypatch, world["root"])
    monkeypatch.setenv("DOCKER_HOST", engine_host())  # the local host: the shared test engine (holds nothing here)

    def run(*args: str, expect: int | None = 0):
        result = run_cli(*args)
        assert expect is None or result.exit_code == expect, (args, result.output)
        return result
    return run


def _services(bed: Bed, client: str) -> dict[str, dict]:
    return {s.attrs["Spec"]["Labels"]["com.docker.compose.service"]: s.attrs
            for s in bed.client().services.list(filters={"label": f"io.agencystack.client={client}"})}


def _task_nodes(bed: Bed, client: str, service: str, project: str | None = None) -> list[str]:
    api = bed.client().api
    names = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
    return sorted(names[t["NodeID"]] for t in api.tasks(filters={"service": f"{project or client + '_notes'}_{service}",
                                                                  "desired-state": "running"})
                  if t["Status"]["State"] == "running")


def _container(bed: Bed, client: str, service: str, node: str | None = None):
    node = node or _task_nodes(bed, client, service)[0]
    found = bed.client(node).containers.list(filters={"label": [f"io.agencystack.client={client}",
                                                                f"com.docker.compose.service={service}"]})
    return found[0]


def _psql(bed: Bed, client: str, sql: str) -> str:
    code, out = _container(bed, client, "db").exec_run(["psql", "-X", "-qAt", "-U", "notes", "-d", "notes", "-c", sql])
    assert code == 0, out
    return out.decode().strip()


def _status(cli, client: str) -> dict[str, dict]:
    rows = cli("status", "notes", "-c", client, "--json", expect=None).json()
    return {s["name"]: s for s in rows[0]["services"]}


def _host(client: str) -> str:
    return f"{client}.localhost"  # a development host: the edge serves it on plain HTTP (no ACME, no redirect)


def _settings(client: str) -> dict[str, str]:
    return {"NOTES_TITLE": f"title-{client}", "NOTES_WEB_REPLICAS": "2", "NOTES_DOMAIN": _host(client)}


_GET = """
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)
try:
    c.request("GET", "/", headers={"Host": sys.argv[3]})
    r = c.getresponse()
    print(r.status, r.read().decode(errors="replace").strip())
except OSError as exc:
    print(0, type(exc).__name__)
"""


def _through_edge(node: str, host: str) -> tuple[int, str]:
    """GET http://<host>/ from the edge's port on ``node`` (swarmN), sent from the bed's bridge namespace."""
    address = f"{BED_NET}.1{node.removeprefix('swarm')}"
    done = subprocess.run(["nsenter", f"--net=/run/netns/{BED_PREFIX}-br", sys.executable, "-c", _GET, address,
                           str(EDGE_PORT), host], capture_output=True, text=True, timeout=30)
    status, _, body = done.stdout.strip().partition(" ")
    return int(status or 0), body or done.stderr[-200:]


def test_the_bed_is_three_ready_managers_with_the_images_no_vip_no_routing_mesh(bed):
    api = bed.client().api
    nodes = api.nodes()
    assert sorted(n["Description"]["Hostname"] for n in nodes) == ["swarm1", "swarm2", "swarm3"]
    assert {n["Status"]["State"] for n in nodes} == {"ready"}
    assert sorted(n["ManagerStatus"]["Reachability"] for n in nodes) == ["reachable"] * 3
    for node in bed.nodes:
        assert bed.client(node).images.get("agencystack-test/busybox:1")


def test_two_clients_install_with_a_database_and_web_spread_over_two_nodes(bed, world, cli, docker_client, images):
    added = cli("hosts", "add", SWARM, "--docker-host", bed.manager)  # no --swarm: the engine says it manages one
    assert "a Swarm manager: Swarm schedules its clients" in added.stdout
    listed = {r["name"]: r for r in cli("hosts", "list", "--json").json()}
    assert listed[SWARM]["swarm"] and listed[SWARM]["reachable"]
    assert sorted(n["hostname"] for n in listed[SWARM]["nodes"]) == ["swarm1", "swarm2", "swarm3"]
    assert {n["state"] for n in listed[SWARM]["nodes"]} == {"ready"} and listed[SWARM]["cpus"] > 0
    assert "NODE" in cli("hosts", "list").stdout
    # the edge first (its network is the one the routed web joins): Traefik on every manager, host-mode ports
    edge = {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "EDGE_HTTP_PORT": str(EDGE_PORT),
            "EDGE_HTTPS_PORT": str(EDGE_PORT + 362)}
    cli("install", "edge", "--host", SWARM, *[f"--set={k}={v}" for k, v in edge.items()])
    traefik = bed.client().services.get(f"host-{SWARM}_edge_traefik").attrs["Spec"]
    assert traefik["Mode"] == {"Global": {}} and "--providers.swarm=true" in traefik["TaskTemplate"]["ContainerSpec"]["Args"]
    wait_until(lambda: len(_task_nodes(bed, "", "traefik", project=f"host-{SWARM}_edge")) == 3, 120, 1,
               "Traefik running on the three managers")
    clients = world["root"].parent / "clients.yaml"  # both at once (the bulk install), each with its settings
    clients.write_text(json.dumps({"clients": [
        {"id": c, "domain": _host(c), "settings": _settings(c)} for c in world["clients"]]}))
    cli("install", "notes", "--clients", str(clients), "--host", SWARM)
    for client in world["clients"]:
        status = _status(cli, client)
        assert status["db"]["state"] == "running" and status["migrate"]["state"] == "completed"
        assert status["web"]["state"] == "running" and status["web"]["detail"].startswith("2/2 running on ")
        web = _task_nodes(bed, client, "web")
        assert len(web) == 2 and len(set(web)) == 2, web
        spec = _services(bed, client)["db"]["Spec"]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [
            f"node.labels.io.agencystack.volume.{client}_notes_pgdata==true"]
        assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    for client in world["clients"]:  # nothing of it on the shared local engine
        assert not docker_client.api.containers(all=True, filters={"label": f"io.agencystack.client={client}"})
    for client in world["clients"]:  # each client through the edge of every node
        for node in bed.nodes:
            wait_until(lambda n=node, c=client: _through_edge(n, _host(c)) == (200, f"title-{c}"), 60, 1,
                       f"{client} through the edge on {node} ({_through_edge(node, _host(client))})")


def test_a_no_op_reinstall_changes_no_service_version(bed, world, cli):
    client = world["clients"][0]
    before = {name: s["Version"]["Index"] for name, s in _services(bed, client).items()}
    again = cli("install", "notes", "-c", client)
    assert "no changes" in again.stdout, again.output
    assert {name: s["Version"]["Index"] for name, s in _services(bed, client).items()} == before


def test_backup_purge_restore_gives_back_equal_data(bed, world, cli):
    client = world["clients"][0]
    _psql(bed, client, "INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 500) g")
    before = _psql(bed, client, "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM notes")
    done = cli("backup", "notes", "-c", client, "--dest", str(world["dest"]), "--json").json()
    cli("uninstall", "notes", "-c", client, "--purge", "--yes")
    assert _services(bed, client) == {}
    for node in bed.nodes:
        assert not bed.client(node).volumes.list(filters={"label": f"io.agencystack.client={client}"})
    cli("restore", "notes", "-c", client, "--host", SWARM, "--from", done["archive"])
    assert _psql(bed, client, "SELECT count(*), md5(string_agg(body, ',' ORDER BY id)) FROM notes") == before
    assert _status(cli, client)["web"]["state"] == "running"
    # notes keeps no settings in its archive (no EnvFile part): set again, they are a rolling update of web only
    db = _services(bed, client)["db"]["Version"]["Index"]
    cli("install", "notes", "-c", client, *[f"--set={k}={v}" for k, v in _settings(client).items()])
    assert len(set(_task_nodes(bed, client, "web"))) == 2 and _services(bed, client)["db"]["Version"]["Index"] == db


def test_draining_a_web_node_moves_its_task_and_the_client_answers_through_the_edge_meanwhile(bed, world, cli):
    first, second = world["clients"]
    db_node = _task_nodes(bed, first, "db")[0]
    node = next(n for n in _task_nodes(bed, first, "web") if n != db_node)
    watch = next(n for n in bed.nodes if n != node)  # the drained node's own Traefik task leaves with the drain
    host = _host(first)
    answers: list[tuple[float, int]] = []
    drained = cli("hosts", "drain", SWARM, node, "--json").json()
    assert drained["availability"] == "drain"
    try:
        def moved() -> bool:
            status, _ = _through_edge(watch, host)
            answers.append((time.monotonic(), status))
            return len(set(_task_nodes(bed, first, "web"))) == 2 and node not in _task_nodes(bed, first, "web")

        wait_until(moved, 120, 0.2, f"web's tasks off {node} (on {_task_nodes(bed, first, 'web')})")
        # the routes follow the move within the Swarm provider's poll: then every answer is the client's
        wait_until(lambda: all(_through_edge(watch, host)[0] == 200 for _ in range(5)), 30, 0.5,
                   "every answer through the edge 200 once the move is seen")
        assert _status(cli, first)["web"]["state"] == "running"
        # reachable all along: the other replica answered while one moved (never a gap longer than 10 s)
        times = [t for t, status in answers if status == 200]
        assert times, answers
        marks = [answers[0][0], *times, answers[-1][0]]
        assert max(b - a for a, b in zip(marks, marks[1:])) <= 10, answers
        if node in _task_nodes(bed, second, "db") or not _task_nodes(bed, second, "db"):
            # the other client's database is pinned to the drained node: it waits for it, and says so
            wait_until(lambda: "waits for node " + node in _status(cli, second)["db"]["detail"], 60, 0.5,
                       "status naming the drained node")
    finally:
        cli("hosts", "undrain", SWARM, node)
    wait_until(lambda: _status(cli, second)["db"]["state"] == "running", 120, 1, "the other client's database back")


def test_a_stopped_node_engine_is_named_by_status_as_what_its_database_waits_for(bed, world, cli):
    waiting = next(c for c in world["clients"] if _task_nodes(bed, c, "db")[0] != "swarm1")
    node = _task_nodes(bed, waiting, "db")[0]
    number = node.removeprefix("swarm")
    bed.run("stop-node", number)
    try:
        wait_until(lambda: f"waits for node {node} (down)" in _status(cli, waiting)["db"]["detail"], 120, 1,
                   f"status naming {node} as what the database waits for")
        assert _status(cli, waiting)["db"]["state"] == "failed"
        wait_until(lambda: _status(cli, waiting)["web"]["state"] == "running", 120, 1, "web rescheduled elsewhere")
        assert node not in _task_nodes(bed, waiting, "web")
    finally:
        bed.run("start-node", number)
    wait_until(lambda: _status(cli, waiting)["db"]["state"] == "running", 180, 1, f"the database back on {node}")


def test_uninstall_purge_leaves_no_service_volume_network_or_secret_on_any_node(bed, world, cli):
    for client in world["clients"]:
        cli("uninstall", "notes", "-c", client, "--purge", "--yes")
    for node in bed.nodes:
        engine = bed.client(node)
        for client in world["clients"]:
            where = {"label": f"io.agencystack.client={client}"}
            assert not engine.api.containers(all=True, filters=where), node
            assert not engine.volumes.list(filters=where), node
            assert not engine.networks.list(filters=where), node
        labels = engine.api.inspect_node(engine.info()["Swarm"]["NodeID"])["Spec"]["Labels"]
        assert not [k for k in labels if k.startswith("io.agencystack.volume.")], (node, labels)
    manager = bed.client()
    assert [s.name for s in manager.services.list(filters={"label": "io.agencystack.managed=true"})] == [
        f"host-{SWARM}_edge_traefik"]  # the clients' services are gone; the edge goes below
    # a purged service is "not running", as on a single host (no address, no task): never the engine's 404
    assert SwarmDriver(bed.manager).addresses(f"{world['clients'][0]}_notes", "db") == {}
    assert not manager.secrets.list() and not manager.configs.list()
    cli("uninstall", "edge", "--host", SWARM, "--purge", "--yes")
    assert not manager.services.list() and not manager.networks.list(names=["agencystack_edge"])
    for node in bed.nodes:  # each node's own ACME volume of the global edge
        assert not bed.client(node).volumes.list(filters={"label": f"io.agencystack.client=host-{SWARM}"}), node
    cli("hosts", "remove", SWARM)
