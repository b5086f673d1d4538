"""A host namespace (AGENCYSTACK_HOST_NAMESPACE, what agencystack.testing sets per test) keeps per-host components
apart from the host's own: their client, project, state directory and edge network are the namespace's."""

from __future__ import annotations

import pytest

from agencystack.errors import UsageError


def test_the_edge_in_a_namespace_is_a_different_edge(agencystack_context, monkeypatch):
    plain = agencystack_context("edge")
    assert (plain.client, plain.project, plain.settings.network) == ("host", "host_edge", "agencystack_edge")
    monkeypatch.setenv("AGENCYSTACK_HOST_NAMESPACE", "t1a2")
    mine = agencystack_context("edge")
    assert (mine.client, mine.project) == ("host-t1a2", "host-t1a2_edge")
    assert mine.dir.path == plain.dir.path.parent.parent / "host-t1a2" / "edge"
    assert mine.settings.network == "agencystack_edge-t1a2"


def test_routes_of_a_client_join_the_namespaces_edge(with_plugins, agencystack_context, monkeypatch):
    monkeypatch.setenv("AGENCYSTACK_HOST_NAMESPACE", "t1a2")
    monkeypatch.setenv("EDGE_HTTP_PORT", "18080")
    stack = agencystack_context("notes", client="acme").stack()
    assert stack.service("web").labels["traefik.docker.network"] == "agencystack_edge-t1a2"
    assert "agencystack_edge" not in stack.service("web").networks


@pytest.mark.parametrize("value", ["T1", "has-dash", "x" * 13])
def test_a_bad_namespace_is_bad_input(agencystack_context, monkeypatch, value):
    monkeypatch.setenv("AGENCYSTACK_HOST_NAMESPACE", value)
    with pytest.raises(UsageError, match="invalid global setting"):
        agencystack_context("edge")
