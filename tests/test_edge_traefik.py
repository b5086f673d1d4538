"""The edge on the real engine: real Traefik (agencystack-test/traefik:3) on high loopback ports routes real echo
containers by the labels the edge's translation writes — exact paths, dev hosts on HTTP, real hosts redirected
to HTTPS and served there."""

from __future__ import annotations

import os

import pytest

from agencystack.edge import routing
from agencystack.stack import Route
from agencystack.testing import free_port
from agencystack.testing import run_cli as cli
from tests.engine.helpers import wait_until
from tests.helpers import edge_host, request, served_by
from tests.images.build import echo_command

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def edge(images, engine_run_id, tmp_path_factory):
    with edge_host(tmp_path_factory.mktemp("edge"), images, engine_run_id) as edge:
        yield edge


@pytest.fixture
def backends(engine, images, edge):
    """Echo containers labelled by the edge's translation for a dev host and a real host."""
    dev, real = f"app.{engine.scope_id}.localhost", f"app-{engine.scope_id}.example.com"
    routes = [
        Route(name="ingest", service="ingest", port=3000, host=dev, prefixes=["/e", "/s"], paths=["/batch"],
              priority=100),
        Route(name="web", service="web", port=8000, host=dev, priority=10),
        Route(name="secure", service="secure", port=8000, host=real),
    ]
    client = f"t{engine.scope_id}"
    labels = routing.labels_by_service(routes, client=client, component="edgetest", network=edge.network)
    for name, port in (("ingest", 3000), ("web", 8000), ("secure", 8000)):
        engine.run(images["busybox"], echo_command(name, port), name=name, network=edge.network,
                   labels=labels[name])
    wait_until(lambda: served_by(edge.http_port, dev, "/") == "web" and served_by(edge.http_port, dev, "/e") == "ingest"
               and served_by(edge.https_port, real, "/", tls=True) == "secure", 30, 0.3, "Traefik to pick up routes")
    return dev, real


def test_exact_paths_on_real_traefik(edge, backends):
    dev, _ = backends
    for path in ("/e", "/e/", "/e/?ip=1", "/s", "/s/abc", "/batch"):
        assert served_by(edge.http_port, dev, path) == "ingest", path
    for path in ("/", "/engage", "/events", "/settings", "/signup", "/shared/x", "/batch/", "/batchx", "/ex"):
        assert served_by(edge.http_port, dev, path) == "web", path


def test_dev_host_is_plain_http_and_real_host_is_redirected_then_served_on_https(edge, backends):
    dev, real = backends
    status, headers, _ = request(edge.http_port, real, "/some/path?x=1")
    assert status in (301, 308)
    assert headers["Location"] == f"https://{real}:{edge.https_port}/some/path?x=1"
    assert served_by(edge.https_port, real, "/some/path", tls=True) == "secure"
    assert served_by(edge.http_port, dev, "/anything") == "web"  # no redirect for a dev host
    status, _, _ = request(edge.https_port, dev, "/", tls=True)
    assert status == 404  # and no TLS router for it


def test_unknown_host_is_not_served(edge, backends):
    assert request(edge.https_port, "nobody.example.org", "/", tls=True)[0] == 404


def test_edge_status_and_no_op_reinstall(edge, backends):
    code, out = cli("status", "edge")
    assert code == 0 and "running" in out, out
    code, out = cli("install", "edge")
    assert code == 0 and "no changes" in out, out


def test_a_second_state_root_can_neither_take_over_nor_remove_the_edge(edge, docker_client, tmp_path, monkeypatch):
    first_root = os.environ["AGENCYSTACK_ROOT"]
    monkeypatch.setenv("AGENCYSTACK_ROOT", str(tmp_path / "second-root"))
    for argv in (["install", "edge"], ["uninstall", "edge", "--purge", "--yes"]):
        code, out = cli(*argv)
        assert code == 2, out
        assert out.count("error:") == 1 and f"another state root ({first_root})" in out, out
    assert docker_client.containers.get(edge.container).status == "running"
    monkeypatch.setenv("AGENCYSTACK_ROOT", first_root)
    assert cli("status", "edge").exit_code == 0


def test_traefik_sees_the_socket_read_only(edge, docker_client):
    container = docker_client.containers.get(edge.container)
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/var/run/docker.sock"]["RW"] is False
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert os.path.basename(container.attrs["Config"]["Image"]).startswith("traefik")


def test_posthog_health_probe_goes_through_the_local_edge(edge, backends):
    """The install's health wait reaches a real domain through this host's edge, before DNS or ACME are done."""
    from agencystack.probes import probe

    dev, real = backends
    assert probe(f"https://{real}:{edge.https_port}/_health") == (True, "200")
    assert probe(f"http://{dev}:{edge.http_port}/_health") == (True, "200")
    ok, detail = probe(f"https://nobody.example.org:{edge.https_port}/_health")
    assert (ok, detail) == (False, "404")
    ok, detail = probe(f"http://{dev}:{free_port()}/_health")
    assert not ok and "Connection refused" in detail
