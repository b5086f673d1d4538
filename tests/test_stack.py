"""The stack model: validated data a component returns, before any engine is touched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agencystack import HealthCheck, Mount, PostgresDump, Route, Service, Stack, Volume, ref
from agencystack.stack import interpolate


def test_dependency_levels_allow_parallel_start():
    stack = Stack(services=[
        Service(name="db", image="pg"), Service(name="cache", image="redis"),
        Service(name="migrate", image="app", job=True, depends_on={"db": "healthy"}),
        Service(name="web", image="app", depends_on={"migrate": "completed", "cache": "started"}),
    ])
    assert stack.levels() == [["cache", "db"], ["migrate"], ["web"]]
    assert stack.service("migrate").restart == "no"  # jobs never restart


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"services": [Service(name="a", image="x", depends_on={"b": "started"})]}, "unknown service 'b'"),
    ({"services": [Service(name="a", image="x", depends_on={"b": "started"}),
                   Service(name="b", image="x", depends_on={"a": "started"})]}, "dependency cycle"),
    ({"services": [Service(name="a", image="x"), Service(name="a", image="y")]}, "duplicate service"),
    ({"services": [Service(name="a", image="x", volumes=[Mount(source="data", target="/d")])]}, "undeclared volume"),
    ({"services": [Service(name="a", image="x", networks={"edge": []})]}, "undeclared network"),
    ({"services": [Service(name="a", image="x")],
      "routes": [Route(name="r", service="b", port=80, host="a.localhost")]}, "unknown service 'b'"),
    ({"services": [Service(name="a", image="x")],
      "backups": [PostgresDump(name="db", service="nope")]}, "unknown service 'nope'"),
])
def test_inconsistent_stacks_are_rejected_with_a_reason(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Stack(**kwargs)


def test_bad_fields_are_rejected():
    with pytest.raises(ValidationError):
        Service(name="Bad Name", image="x")
    with pytest.raises(ValidationError):
        HealthCheck(test=["curl", "x"])
    with pytest.raises(ValidationError):
        Service(name="a", image="x", replicas=2)


def test_secrets_are_references_resolved_like_compose():
    service = Service(name="web", image="x", environment={"URL": f"postgres://u:{ref('DB_PASSWORD')}@db/x",
                                                          "LITERAL": "$$HOME"})
    stack = Stack(services=[service])
    assert stack.references() == {"DB_PASSWORD"}
    assert interpolate(service.environment["URL"], {"DB_PASSWORD": "p"}) == "postgres://u:p@db/x"
    assert interpolate("$$HOME", {}) == "$HOME"
    with pytest.raises(KeyError):
        interpolate(service.environment["URL"], {})


def test_config_hash_changes_with_resolved_values_only():
    service = Service(name="web", image="x", environment={"K": ref("S")})
    assert service.config_hash({"S": "1"}) == service.config_hash({"S": "1", "OTHER": "2"})
    assert service.config_hash({"S": "1"}) != service.config_hash({"S": "2"})
    assert service.config_hash({"S": "1"}) != service.model_copy(update={"image": "y"}).config_hash({"S": "1"})


def test_default_log_caps_protect_the_disk():
    assert Service(name="a", image="x").logging.options == {"max-size": "50m", "max-file": "3"}


def test_published_ports_default_to_loopback():
    from agencystack import Port

    assert Port(container=80, host=8080).host_ip == "127.0.0.1"


def test_declared_volumes_and_bind_mounts_are_accepted_as_given():
    stack = Stack(services=[Service(name="a", image="x", volumes=[
        Mount(source="data", target="/d"), Mount(source="/srv/conf", target="/c", read_only=True)])],
        volumes=[Volume(name="data")])
    named, bind = stack.service("a").volumes
    assert (named.is_bind, named.source, named.read_only) == (False, "data", False)
    assert (bind.is_bind, bind.source, bind.read_only) == (True, "/srv/conf", True)  # a path: no declaration needed
    assert [v.name for v in stack.volumes] == ["data"]
