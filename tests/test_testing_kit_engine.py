"""The test kit (agencystack.testing) on the real engine, used as a plugin author uses it: a test that installs and
purges the edge next to the engine's real edge leaves the real one (and its tenants' routes) untouched; the
idempotency and backup round-trip helpers hold for the ``notes`` fixture (web + Postgres + migrate job)."""

from __future__ import annotations

import pytest

from agencystack.testing import assert_backup_roundtrip, assert_idempotent
from tests.engine.helpers import wait_until
from tests.helpers import edge_host

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def real_edge(images, engine_run_id, tmp_path_factory, docker_client):
    """The engine's 'real' edge: installed from another state root, as on a host with running tenants."""
    with edge_host(tmp_path_factory.mktemp("real-edge"), images, engine_run_id, namespace="") as edge:
        yield edge, docker_client.containers.get(edge.container).id


@pytest.fixture
def offline_images(images, monkeypatch):
    """What an author's offline CI sets: the image settings, in the environment."""
    for key, value in {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik",
                       "NOTES_POSTGRES_IMAGE": images["postgres"], "NOTES_BUSYBOX_IMAGE": images["busybox"]}.items():
        monkeypatch.setenv(key, value)


def test_a_plugin_test_installs_and_purges_its_own_edge_without_touching_the_real_one(
        real_edge, offline_images, with_plugins, agencystack_engine, agencystack_run, docker_client):
    edge, real_id = real_edge
    installed = agencystack_run("install", "edge")
    assert installed.exit_code == 0, installed.output
    mine = docker_client.containers.get(f"host-{agencystack_engine.namespace}_edge-traefik-1")
    assert set(mine.attrs["NetworkSettings"]["Networks"]) == {agencystack_engine.edge_network}
    assert agencystack_run("install", "notes", "-c", "t1").exit_code == 0
    url = agencystack_engine.url("notes.t1.localhost")
    assert url == f"http://notes.t1.localhost:{agencystack_engine.edge_http_port}/"
    # served by the test's own edge, once Traefik saw the new container (notes declares no probe to wait for)
    wait_until(lambda: agencystack_engine.get(url) == (200, "Notes\n"), 30, 0.3, f"{url} through the test's edge")

    purged = agencystack_run("uninstall", "edge", "--purge", "--yes", "--force")
    assert purged.exit_code == 0, purged.output
    real = docker_client.containers.get(edge.container)
    assert (real.id, real.status) == (real_id, "running")  # the real edge: same container, still running
    assert edge.network in real.attrs["NetworkSettings"]["Networks"]


def test_idempotency_and_backup_roundtrip_helpers(offline_images, with_plugins, agencystack_engine, agencystack_run):
    assert agencystack_run("install", "edge").exit_code == 0
    assert_idempotent("notes", "t1")

    def sql(statement: str) -> str:
        return agencystack_engine.exec("notes", "db", "psql", "-U", "notes", "-d", "notes", "-At", "-c", statement,
                                       client="t1").strip()

    def write() -> str:
        sql("INSERT INTO notes (body) VALUES ('kept across destroy and restore')")
        return "kept across destroy and restore"

    assert_backup_roundtrip("notes", "t1", write=write, read=lambda: sql("SELECT body FROM notes ORDER BY id"))
