"""The edge's route → Traefik label translation (a pure function) and how it amends a stack."""

from __future__ import annotations

import re

import pytest

from agencystack import UsageError
from agencystack.edge import routing
from agencystack.edge.routing import Edge
from agencystack.stack import HttpProbe, Network, Route, Service, Stack


def route(**kw) -> Route:
    return Route(**{"name": "r", "service": "web", "port": 8000, "host": "a.example.com", **kw})


@pytest.mark.parametrize("kw, expected", [
    ({}, "Host(`a.example.com`)"),
    ({"paths": ["/e"]}, "Host(`a.example.com`) && (Path(`/e`))"),
    ({"prefixes": ["/e"]}, "Host(`a.example.com`) && (Path(`/e`) || PathPrefix(`/e/`))"),
    ({"prefixes": ["/i/v0/"]}, "Host(`a.example.com`) && (Path(`/i/v0`) || PathPrefix(`/i/v0/`))"),
    ({"prefixes": ["/"]}, "Host(`a.example.com`) && (PathPrefix(`/`))"),
    ({"paths": ["/x"], "prefixes": ["/s"]},
     "Host(`a.example.com`) && (Path(`/x`) || Path(`/s`) || PathPrefix(`/s/`))"),
])
def test_rule(kw, expected):
    assert routing.rule(route(**kw)) == expected


def test_never_a_bare_prefix():
    """A bare PathPrefix(`/e`) would match /engage and PathPrefix(`/s`) /settings: every prefix ends in '/'."""
    text = routing.rule(route(prefixes=["/e", "/s", "/batch"], paths=["/flags"]))
    assert re.findall(r"PathPrefix\(`([^`]*)`\)", text) == ["/e/", "/s/", "/batch/"]


@pytest.mark.parametrize("path", ["e", "/a b", "/x`)", "/a||b", "/a)"])
def test_invalid_paths_are_refused(path):
    with pytest.raises(UsageError, match="invalid path"):
        routing.rule(route(paths=[path]))


@pytest.mark.parametrize("host, dev", [
    ("posthog.localhost", True), ("localhost", True), ("x.acme.test", True), ("app.internal", True),
    ("printer.local", True), ("a.example", True), ("box.home.arpa", True), ("a.invalid", True),
    ("analytics.acme.com", False), ("example.com", False), ("localhost.com", False), ("mytest", False),
    ("testing.io", False), ("a.example.com", False),
])
def test_dev_hosts(host, dev):
    assert routing.is_dev_host(host) is dev


def test_labels_real_host_tls_and_priority():
    labels = routing.route_labels(route(name="capture", prefixes=["/e"], priority=100), client="acme",
                                  component="posthog")
    r = "traefik.http.routers.acme_posthog_capture"
    assert labels == {
        f"{r}.rule": "Host(`a.example.com`) && (Path(`/e`) || PathPrefix(`/e/`))",
        f"{r}.priority": "100",
        f"{r}.service": "acme_posthog_capture",
        f"{r}.entrypoints": "websecure",
        f"{r}.tls": "true",
        f"{r}.tls.certresolver": "letsencrypt",
        "traefik.http.services.acme_posthog_capture.loadbalancer.server.port": "8000",
    }


def test_labels_dev_host_plain_http():
    labels = routing.route_labels(route(host="posthog.localhost"), client="acme", component="posthog")
    r = "traefik.http.routers.acme_posthog_r"
    assert labels[f"{r}.entrypoints"] == "web"
    assert not any(".tls" in k for k in labels)


def test_strip_prefix_is_a_middleware_named_after_the_router():
    labels = routing.route_labels(route(name="live", prefixes=["/livestream/"], strip_prefix=True), client="acme",
                                  component="posthog")
    assert labels["traefik.http.routers.acme_posthog_live.middlewares"] == "acme_posthog_live-strip"
    assert labels["traefik.http.middlewares.acme_posthog_live-strip.stripprefix.prefixes"] == "/livestream"
    assert not any("middlewares" in k for k in routing.route_labels(route(prefixes=["/e"]), client="a", component="p"))
    with pytest.raises(UsageError, match="strip_prefix needs prefixes"):
        routing.route_labels(route(paths=["/x"], strip_prefix=True), client="a", component="p")


def test_default_priorities_put_paths_above_catch_all_above_redirect():
    assert routing.priority(route(paths=["/e"])) == routing.PATH_PRIORITY
    assert routing.priority(route()) == routing.CATCH_ALL_PRIORITY
    assert routing.priority(route(priority=7)) == 7
    assert routing.PATH_PRIORITY > routing.CATCH_ALL_PRIORITY > routing.REDIRECT_PRIORITY


def test_router_names_cannot_collide_across_clients_and_components():
    """Client 'a-b' + component 'c' vs client 'a' + component 'b-c': '_' separates (neither part may hold one)."""
    assert routing.router_name("a-b", "c", "r") != routing.router_name("a", "b-c", "r")


def test_labels_grouped_per_service_with_network():
    routes = [route(name="one", paths=["/e"]), route(name="two"), route(name="three", service="api", port=3000)]
    grouped = routing.labels_by_service(routes, client="c", component="p", network="agencystack_edge")
    assert set(grouped) == {"web", "api"}
    for labels in grouped.values():
        assert labels["traefik.enable"] == "true"
        assert labels["traefik.docker.network"] == "agencystack_edge"
    assert "traefik.http.routers.c_p_one.rule" in grouped["web"]
    assert "traefik.http.routers.c_p_two.rule" in grouped["web"]
    assert grouped["api"]["traefik.http.services.c_p_three.loadbalancer.server.port"] == "3000"


def _stack() -> Stack:
    return Stack(services=[Service(name="web", image="x", labels={"mine": "1"}), Service(name="db", image="y")],
                 routes=[route(host="posthog.localhost", prefixes=["/e"])],
                 probes=[HttpProbe(url="https://posthog.localhost/_health"),
                         HttpProbe(url="https://elsewhere.example.com/x")])


def test_attach_labels_network_probes_and_is_idempotent():
    stack = _stack()
    edge = Edge(network="agencystack_edge-t", http_port=18080, https_port=18443)
    routing.attach(stack, client="acme", component="posthog", edge=edge)
    once = stack.model_dump()
    web, db = stack.service("web"), stack.service("db")
    assert web.labels["mine"] == "1" and web.labels["traefik.enable"] == "true"
    assert web.networks == {"default": [], "agencystack_edge-t": []}
    assert db.networks == {"default": []} and not db.labels  # not routed: untouched
    assert stack.network("agencystack_edge-t") == Network(name="agencystack_edge-t", external=True)
    assert [p.url for p in stack.probes] == ["http://posthog.localhost:18080/_health",
                                             "https://elsewhere.example.com/x"]
    routing.attach(stack, client="acme", component="posthog", edge=edge)
    assert stack.model_dump() == once


def test_attach_without_routes_changes_nothing():
    stack = Stack(services=[Service(name="web", image="x")])
    before = stack.model_dump()
    routing.attach(stack, client="acme", component="c", edge=Edge())
    assert stack.model_dump() == before


@pytest.mark.parametrize("url, expected", [
    ("https://posthog.localhost/_health", "http://posthog.localhost/_health"),
    ("https://a.example.com/_health", "https://a.example.com/_health"),
])
def test_public_url_default_ports(url, expected):
    assert routing.public_url(url, Edge()) == expected


def test_public_url_published_https_port():
    assert routing.public_url("https://a.example.com/_health?x=1", Edge(https_port=8443)) == \
        "https://a.example.com:8443/_health?x=1"
