"""The Docker engine driver: plan logic on list data (no engine), then everything against the REAL engine.

Engine tests (``@pytest.mark.engine``) skip with the reason when no engine answers, and fail under CI=true (see
tests/engine/fixtures.py). Every test uses a unique project name (``engine.name``) that the ``engine`` fixture
sweeps at teardown, and removes its deployment itself in a finalizer as well.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from agencystack.engine import Deployment
from agencystack.engine import labels
from agencystack.engine.diff import diff
from agencystack.engine.docker import DockerDriver
from agencystack.engine.observe import Actual, Observed, image_index, normalize_ref, service_status
from agencystack.engine.streams import split_lines
from agencystack import hookimpl
from agencystack.component import Component
from agencystack.errors import ComponentError, EngineUnreachable
from agencystack.results import LogRequest, State, parse_since
from agencystack.stack import HealthCheck, Mount, Network, Port, Service, Stack, Volume
from agencystack.testing import free_port
from tests.engine.helpers import (SocketProxy, by_service, containers_of, deployment, engine_env, engine_host, svc,
                                  wait_until)

REPO = Path(__file__).resolve().parent.parent
MUTATING = {"POST", "PUT", "DELETE", "PATCH"}


# ================================================================================================================
# helpers
# ================================================================================================================
def ready_after(seconds: float) -> str:
    return f"sleep {seconds}; touch /tmp/ready; exec sleep 3600"


READY_CHECK = HealthCheck(test=["CMD-SHELL", "test -e /tmp/ready"], interval=0.3, timeout=2, retries=60)


class CallLog:
    """Every engine API request the driver makes (a requests response hook on the SDK's APIClient)."""

    def __init__(self, driver: DockerDriver):
        self.calls: list[tuple[str, str]] = []
        driver.api.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append((response.request.method, response.request.path_url.split("?")[0]))

    def mutations(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in MUTATING]

    def clear(self) -> None:
        self.calls.clear()


# ================================================================================================================
# unit: list data → plan, status (no engine)
# ================================================================================================================
IMG = "example/app:1"


def entry(project: str, service: str, *, state: str = "running", status: str = "Up 3 minutes",
          digest: str = "", image_id: str = "sha256:aaa", networks: tuple[str, ...] | None = None,
          name: str | None = None, job: bool = False, oneoff: bool = False, helper: bool = False) -> dict:
    found = {labels.PROJECT: project, labels.SERVICE: service, labels.CONFIG_HASH: digest, labels.MANAGED: "true",
             labels.ONEOFF: "True" if oneoff else "False"}
    if job:
        found[labels.JOB] = "true"
    if helper:
        found[labels.HELPER] = "true"
    nets = networks if networks is not None else (f"{project}_default",)
    return {"Id": f"id-{service}-{name or ''}", "Names": [f"/{name or labels.container_name(project, service)}"],
            "Labels": found, "State": state, "Status": status, "Image": IMG, "ImageID": image_id,
            "NetworkSettings": {"Networks": {n: {} for n in nets}}}


def unit_stack() -> Stack:
    return Stack(services=[
        Service(name="db", image=IMG, environment={"PW": "${PW}"}),
        Service(name="migrate", image=IMG, job=True, depends_on={"db": "healthy"}),
        Service(name="web", image=IMG, depends_on={"migrate": "completed"}),
    ])


def unit_actual(dep: Deployment, *overrides: dict, images: dict[str, str] | None = None,
                networks: tuple[str, ...] = ("default",)) -> Actual:
    p = dep.project
    stack = dep.stack
    h = {s.name: s.config_hash(dep.env) for s in stack.services}
    listed = {
        "db": entry(p, "db", digest=h["db"], status="Up 1 minute (healthy)"),
        "migrate": entry(p, "migrate", digest=h["migrate"], state="exited", status="Exited (0) 1 minute ago",
                         job=True),
        "web": entry(p, "web", digest=h["web"]),
    }
    extra = []
    for o in overrides:
        if o.get("_service") in listed and not o.get("_extra"):
            listed[o["_service"]].update({k: v for k, v in o.items() if not k.startswith("_")})
        else:
            extra.append({k: v for k, v in o.items() if not k.startswith("_")})
    containers = [Observed.from_list(e) for e in list(listed.values()) + extra]
    return Actual(containers=containers, networks={f"{p}_{n}": {} for n in networks}, volumes={},
                  images=images if images is not None else {IMG: "sha256:aaa"})


def kinds(plan_diff: Any) -> dict[str, tuple[str, str]]:
    return {a.change.service: (a.change.kind, a.change.reason) for a in plan_diff.actions}


def test_plan_everything_current_is_noop() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    result = diff(dep, unit_actual(dep))
    assert result.plan().is_noop
    assert kinds(result)["migrate"] == ("unchanged", "completed")


def test_plan_fresh_creates_everything_with_network() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    plan = diff(dep, Actual([], {}, {}, {})).plan()
    assert plan.by_kind() == {"create": ["db", "migrate", "web"]}
    assert plan.create_networks == ["p1_default"]


def test_plan_changed_env_recreates_only_that_service() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    actual = unit_actual(dep)
    changed = deployment("p1", unit_stack(), {"PW": "y"})
    assert diff(changed, actual).plan().by_kind() == {"recreate": ["db"], "unchanged": ["migrate", "web"]}


def test_plan_image_id_changed_for_same_ref_recreates() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    actual = unit_actual(dep, images={IMG: "sha256:bbb"})
    assert {k: v[0] for k, v in kinds(diff(dep, actual)).items()} == {
        "db": "recreate", "migrate": "recreate", "web": "recreate"}
    assert kinds(diff(dep, actual))["db"][1] == "image changed"


def test_plan_stopped_started_orphans_failed_job() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    actual = unit_actual(
        dep,
        {"_service": "web", "State": "exited", "Status": "Exited (137) 2 seconds ago"},
        {"_service": "migrate", "State": "exited", "Status": "Exited (1) 2 seconds ago"},
        entry("p1", "old", digest="zz") | {"_extra": True},
    )
    result = kinds(diff(dep, actual))
    assert result["web"] == ("start", "exited (137)")
    assert result["migrate"] == ("start", "exited (1)")
    assert result["old"] == ("remove", "orphaned")
    assert result["db"][0] == "unchanged"


def test_plan_leftovers_and_partial_creates_are_redone() -> None:
    dep = deployment("p1", unit_stack(), {"PW": "x"})
    h = dep.stack.service("web").config_hash(dep.env)
    # a second container for one service (whatever its name) → recreate: never two containers for one service
    dup = entry("p1", "web", digest=h, name="p1-web-2") | {"_extra": True}
    assert kinds(diff(dep, unit_actual(dep, dup)))["web"] == ("recreate", "more than one container")
    # only a stray container, not the canonical name → create (the stray is removed first)
    actual = unit_actual(dep, dup)
    actual.containers = [c for c in actual.containers if c.name != "p1-web-1"]
    act = next(a for a in diff(dep, actual).actions if a.change.service == "web")
    assert act.change.kind == "create" and [c.name for c in act.remove] == ["p1-web-2"]
    # created but never connected to every network (interrupted create) → recreate
    two_nets = Stack(services=[Service(name="web", image=IMG, networks={"default": [], "back": []})],
                     networks=[Network(name="default"), Network(name="back")])
    dep2 = deployment("p2", two_nets)
    partial = Actual([Observed.from_list(entry("p2", "web", digest=two_nets.services[0].config_hash({}),
                                               state="created", status="Created"))],
                     {"p2_default": {}, "p2_back": {}}, {}, {IMG: "sha256:aaa"})
    assert kinds(diff(dep2, partial))["web"] == ("recreate", "network attachment missing")
    partial.containers = [Observed.from_list(entry("p2", "web", digest=two_nets.services[0].config_hash({}),
                                                   state="created", status="Created",
                                                   networks=("p2_default", "p2_back")))]
    assert kinds(diff(dep2, partial))["web"] == ("start", "created, not started")


def test_plan_replicas_zero_and_oneoff_containers() -> None:
    stack = Stack(services=[Service(name="web", image=IMG), Service(name="extra", image=IMG, replicas=0)])
    dep = deployment("p1", stack)
    listed = [entry("p1", "web", digest=stack.services[0].config_hash({})), entry("p1", "extra", digest="x"),
              entry("p1", "web", name="p1-web-run-abc", oneoff=True),
              entry("p1", "", name="p1-data-helper-1", oneoff=True, helper=True)]
    result = kinds(diff(dep, Actual([Observed.from_list(e) for e in listed], {"p1_default": {}}, {},
                                    {IMG: "sha256:aaa"})))
    assert result == {"web": ("unchanged", ""), "extra": ("remove", "replicas 0"),
                      "p1-data-helper-1": ("remove", "leftover helper container")}


def test_plan_creates_missing_volumes_but_never_external_ones() -> None:
    stack = Stack(services=[Service(name="db", image=IMG, volumes=[Mount(source="data", target="/d"),
                                                                    Mount(source="shared", target="/s")],
                                    networks={"default": [], "edge": []})],
                  volumes=[Volume(name="data"), Volume(name="shared", external=True)],
                  networks=[Network(name="default"), Network(name="edge", external=True)])
    plan = diff(deployment("p1", stack), Actual([], {}, {}, {})).plan()
    assert plan.create_volumes == ["p1_data"] and plan.create_networks == ["p1_default"]


def test_take_down_order_dependents_first_in_parallel_and_stops_below_a_failure() -> None:
    """Uninstall's order (as compose's down): a container goes once what depends on it has gone, independent ones
    at once; a chain longer than the driver's thread pool still finishes; a dependent that cannot be taken down
    keeps what it depends on."""
    from agencystack.engine.client import MAX_WORKERS
    from agencystack.engine.docker import _in_reverse_dependency_order

    stack = Stack(services=[Service(name="db", image=IMG), Service(name="cache", image=IMG),
                            Service(name="api", image=IMG, depends_on={"db": "healthy", "cache": "started"}),
                            Service(name="web", image=IMG, depends_on={"api": "started"}),
                            Service(name="metrics", image=IMG)])
    dep = deployment("p", stack)
    found = [Observed.from_list(entry("p", name)) for name in ("db", "cache", "api", "web", "metrics")]
    found.append(Observed.from_list(entry("p", "gone", name="p-gone-1")))  # an orphan
    started, finished, lock = {}, {}, threading.Lock()

    def take(c: Observed) -> None:
        with lock:
            started[c.service] = time.monotonic()
        time.sleep(0.3)
        with lock:
            finished[c.service] = time.monotonic()

    _in_reverse_dependency_order(dep, found, take)
    assert finished["web"] <= started["api"] and finished["api"] <= min(started["db"], started["cache"])
    leaves = ("web", "metrics", "gone")
    assert max(started[s] for s in leaves) < min(finished[s] for s in leaves)  # together, at once

    chain = [Service(name="s0", image=IMG)] + [Service(name=f"s{i}", image=IMG, depends_on={f"s{i - 1}": "started"})
                                                for i in range(1, MAX_WORKERS + 8)]
    taken: list[str] = []
    _in_reverse_dependency_order(deployment("q", Stack(services=chain)),
                                 [Observed.from_list(entry("q", s.name)) for s in chain],
                                 lambda c: taken.append(c.service))
    assert taken == [s.name for s in reversed(chain)]

    def fail_on_api(c: Observed) -> None:
        if c.service == "api":
            raise ComponentError("api would not stop")
        taken.append(c.service)

    taken.clear()
    with pytest.raises(ComponentError, match="api would not stop"):
        _in_reverse_dependency_order(dep, found, fail_on_api)
    assert sorted(taken) == ["gone", "metrics", "web"]  # db and cache kept: api still needs them


@pytest.mark.parametrize(("state", "status", "job", "expected", "detail"), [
    ("running", "Up 3 minutes (healthy)", False, State.RUNNING, "healthy"),
    ("running", "Up 3 minutes", False, State.RUNNING, "running"),
    ("running", "Up 2 seconds (health: starting)", False, State.STARTING, "health: starting"),
    ("running", "Up 5 minutes (unhealthy)", False, State.FAILED, "unhealthy"),
    ("created", "Created", False, State.STARTING, "created"),
    ("restarting", "Restarting (1) 2 seconds ago", False, State.STARTING, "restarting (last exit 1)"),
    ("exited", "Exited (1) 3 minutes ago", False, State.FAILED, "exited (1)"),
    ("exited", "Exited (0) 3 minutes ago", True, State.COMPLETED, "exited (0)"),
    ("exited", "Exited (2) 3 minutes ago", True, State.FAILED, "exited (2)"),
    ("exited", "Exited (0) 3 minutes ago", False, State.STOPPED, "exited (0)"),
    ("exited", "Exited (137) 3 minutes ago", False, State.STOPPED, "stopped (exit 137)"),
    ("dead", "Dead", False, State.FAILED, "dead"),
])
def test_status_mapping_from_list_data(state: str, status: str, job: bool, expected: State, detail: str) -> None:
    result = service_status(Observed.from_list(entry("p", "s", state=state, status=status, job=job)))
    assert (result.state, result.detail, result.name, result.container) == (expected, detail, "s", "p-s-1")


def test_the_volumes_a_container_mounts_come_from_the_list_data() -> None:
    """What a purge removes a volume after: the list call's Mounts (volumes, named or anonymous; not binds)."""
    listed = entry("p", "db")
    listed["Mounts"] = [{"Type": "volume", "Name": "p_data", "Destination": "/data"},
                        {"Type": "volume", "Name": "3f9a0c", "Destination": "/anon"},
                        {"Type": "bind", "Source": "/etc/hosts", "Destination": "/h"}]
    assert Observed.from_list(listed).volumes == {"p_data", "3f9a0c"}
    assert Observed.from_list(entry("p", "web")).volumes == frozenset()


def test_image_refs_normalise_like_the_engine_lists_them() -> None:
    assert normalize_ref("busybox") == "busybox:latest"
    assert normalize_ref("docker.io/library/postgres:15") == "postgres:15"
    assert normalize_ref("localhost:5000/a/b") == "localhost:5000/a/b:latest"
    assert normalize_ref("ghcr.io/x/y@sha256:abc") == "ghcr.io/x/y@sha256:abc"
    assert image_index([{"Id": "sha256:1", "RepoTags": ["busybox:latest"], "RepoDigests": None}]) == {
        "busybox:latest": "sha256:1"}


def test_log_helpers() -> None:
    assert list(split_lines([b"a\nb", b"c\n", b"", b"d"])) == ["a", "bc", "d"]
    assert abs(parse_since("10m") - (time.time() - 600)) < 5
    assert parse_since("2026-01-31T12:00:00Z") == 1769860800.0
    assert parse_since(None) is None


def test_archive_root_entry_is_recognised() -> None:
    import io
    import tarfile

    from agencystack.engine.streams import root_entry

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        root = tarfile.TarInfo(".")
        root.type, root.uid, root.gid, root.mode = tarfile.DIRTYPE, 999, 998, 0o700
        tar.addfile(root)
    assert root_entry(buf.getvalue()[:512]) == (999, 998, 0o700)
    assert root_entry(b"\0" * 512) is None and root_entry(b"") is None


def test_unreachable_engine_names_the_address(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(EngineUnreachable) as err:
        DockerDriver(address).ping()
    assert str(err.value).startswith(f"cannot reach the container engine at {address}: ")
    assert err.value.exit_code == 3
    with pytest.raises(EngineUnreachable):
        DockerDriver(address).status()


# ================================================================================================================
# engine: apply / plan
# ================================================================================================================
def chain_stack(image: str, *, web_env: str = "one") -> Stack:
    """db (healthy after 1 s) ← migrate (job) ← web, plus a cache with no dependency."""
    return Stack(
        services=[
            svc("db", image, ready_after(1), healthcheck=READY_CHECK, volumes=[Mount(source="data", target="/data")],
                environment={"DB_PASSWORD": "${DB_PASSWORD}"}),
            svc("migrate", image, "echo migrating; sleep 0.5; echo migrated", job=True, depends_on={"db": "healthy"}),
            svc("web", image, depends_on={"migrate": "completed", "db": "healthy"},
                environment={"FLAVOUR": web_env}, networks={"default": ["www"], "back": []}),
            svc("cache", image, networks={"back": []}),
        ],
        volumes=[Volume(name="data")],
        networks=[Network(name="default"), Network(name="back", internal=True)],
    )


ENV = {"DB_PASSWORD": "pw-Very-Secret-123"}


@pytest.mark.engine
def test_fresh_apply_then_reapply_makes_no_mutations(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("noop")
    dep = deployment(project, chain_stack(images["busybox"]), ENV)
    deployed(dep)
    seen: list[tuple[str, str]] = []
    plan = driver.plan(dep)
    assert plan.by_kind() == {"create": ["cache", "db", "migrate", "web"]}  # in dependency-level order
    assert set(plan.create_networks) == {f"{project}_default", f"{project}_back"}
    driver.apply(dep, plan, lambda s, m: seen.append((s, m)))

    # dependency order: web was started only after db was healthy and migrate completed
    assert seen.index(("db", "healthy")) < seen.index(("migrate", "starting"))
    assert seen.index(("migrate", "completed")) < seen.index(("web", "starting"))

    status = driver.status(project)[project]
    assert {s.name: (s.state, s.detail) for s in status} == {
        "cache": (State.RUNNING, "running"), "db": (State.RUNNING, "healthy"),
        "migrate": (State.COMPLETED, "exited (0)"), "web": (State.RUNNING, "running")}

    # labels and names as compose has them; secrets only in the environment
    web = docker_client.containers.get(f"{project}-web-1")
    for key, value in {labels.PROJECT: project, labels.SERVICE: "web", labels.CONTAINER_NUMBER: "1",
                       labels.ONEOFF: "False", labels.WORKING_DIR: f"/tmp/{project}",
                       labels.CONFIG_FILES: f"/tmp/{project}/compose.yaml", labels.CLIENT: "acme",
                       labels.COMPONENT: "demo", labels.MANAGED: "true", labels.VERSION: "1.2.3"}.items():
        assert web.labels[key] == value
    assert web.labels[labels.CONFIG_HASH] == web.labels[labels.COMPOSE_CONFIG_HASH] != ""
    nets = web.attrs["NetworkSettings"]["Networks"]
    assert set(nets) == {f"{project}_default", f"{project}_back"}
    assert {"web", "www"} <= set(nets[f"{project}_default"]["Aliases"])
    db = docker_client.containers.get(f"{project}-db-1")
    assert "DB_PASSWORD=pw-Very-Secret-123" in db.attrs["Config"]["Env"]
    dumped = json.dumps({k: v for k, v in db.attrs["Config"].items() if k != "Env"}) + json.dumps(db.labels)
    assert "pw-Very-Secret-123" not in dumped
    assert db.attrs["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3",
                                                                                    "max-size": "50m"}}
    assert db.attrs["HostConfig"]["Init"] is True
    assert db.attrs["Config"]["Healthcheck"]["Interval"] == 300_000_000
    net = docker_client.networks.get(f"{project}_back")
    assert net.attrs["Internal"] is True and net.attrs["Labels"][labels.COMPOSE_NETWORK] == "back"
    vol = docker_client.volumes.get(f"{project}_data")
    assert vol.attrs["Labels"][labels.COMPOSE_VOLUME] == "data" and vol.attrs["Labels"][labels.MANAGED] == "true"
    # DNS between services on the project network (alias too)
    code, out = web.exec_run(["sh", "-c", "nslookup www >/dev/null && ping -c1 -W2 db >/dev/null && echo ok"])
    assert code == 0, out

    before = {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in containers_of(docker_client, project)}
    calls = CallLog(driver)
    second = driver.plan(dep)
    assert second.is_noop, second
    driver.apply(dep, second)
    assert calls.mutations() == []
    assert {c.name: (c.id, c.attrs["State"]["StartedAt"]) for c in containers_of(docker_client, project)} == before
    # plan itself: a constant number of list calls (containers, networks, volumes, images)
    calls.clear()
    driver.plan(dep)
    assert sorted(path.split("/", 2)[2] for _, path in calls.calls) == [
        "containers/json", "images/json", "networks", "volumes"]
    assert {method for method, _ in calls.calls} == {"GET"}


@pytest.mark.engine
def test_changed_env_recreates_only_that_service_and_volume_keeps_data(driver, engine, images, deployed,
                                                                       docker_client) -> None:
    project = engine.name("env")
    dep = deployment(project, chain_stack(images["busybox"]), ENV)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    docker_client.containers.get(f"{project}-db-1").exec_run(["sh", "-c", "echo kept > /data/file"])
    ids = {c.name: c.id for c in containers_of(docker_client, project)}

    changed = deployment(project, chain_stack(images["busybox"]), {"DB_PASSWORD": "another-password"})
    plan = driver.plan(changed)
    assert plan.by_kind() == {"recreate": ["db"], "unchanged": ["cache", "migrate", "web"]}
    assert [c.reason for c in plan.changes if c.kind == "recreate"] == ["config hash differs"]
    driver.apply(changed, plan)
    after = {c.name: c.id for c in containers_of(docker_client, project)}
    assert after[f"{project}-db-1"] != ids[f"{project}-db-1"]
    assert {k: v for k, v in after.items() if "-db-" not in k} == {k: v for k, v in ids.items() if "-db-" not in k}
    db = docker_client.containers.get(f"{project}-db-1")
    assert db.exec_run(["cat", "/data/file"]).output.strip() == b"kept"
    assert driver.plan(changed).is_noop


@pytest.mark.engine
def test_same_ref_new_image_id_recreates(driver, engine, images, deployed, docker_client) -> None:
    repo = engine.name("img")
    ref = f"{repo}:1"
    base = docker_client.images.get(images["busybox"])
    base.tag(repo, "1")
    maker = docker_client.containers.create(images["busybox"], ["true"], name=engine.name("maker"),
                                            labels=engine.labels)
    newer = maker.commit(changes=["LABEL rebuilt=yes"])
    project = engine.name("retag")
    dep = deployment(project, Stack(services=[svc("a", ref), svc("b", images["busybox"])]))
    try:
        deployed(dep)
        driver.apply(dep, driver.plan(dep))
        assert driver.plan(dep).is_noop
        newer.tag(repo, "1")  # the same reference now names another image (a pulled or rebuilt tag)
        plan = driver.plan(dep)
        assert [(c.service, c.kind, c.reason) for c in plan.changes] == [
            ("a", "recreate", "image changed"), ("b", "unchanged", "")]
        driver.apply(dep, plan)
        assert docker_client.containers.get(f"{project}-a-1").image.id == newer.id
        assert driver.plan(dep).is_noop
    finally:
        for tag in (ref,):
            try:
                docker_client.images.remove(tag, noprune=True)
            except Exception:  # noqa: BLE001
                pass
        try:
            docker_client.containers.get(f"{project}-a-1").remove(force=True)
        except Exception:  # noqa: BLE001
            pass
        maker.remove(force=True)
        try:
            docker_client.images.remove(newer.id)
        except Exception:  # noqa: BLE001
            pass


@pytest.mark.engine
def test_removed_service_is_removed_as_orphan(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("orphan")
    stack = Stack(services=[svc("a", images["busybox"]), svc("b", images["busybox"])])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    smaller = deployment(project, Stack(services=[svc("a", images["busybox"])]))
    plan = driver.plan(smaller)
    assert plan.by_kind() == {"remove": ["b"], "unchanged": ["a"]}
    assert plan.changes[0].reason == "orphaned"
    driver.apply(smaller, plan)
    assert sorted(by_service(docker_client, project)) == ["a"]


@pytest.mark.engine
def test_a_network_dropped_from_the_stack_is_removed(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("netgone")
    both = Stack(services=[svc("a", images["busybox"], networks={"default": [], "back": []}),
                           svc("b", images["busybox"], networks={"back": []})],
                 networks=[Network(name="default"), Network(name="back")])
    dep = deployment(project, both)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    one = deployment(project, Stack(services=[svc("a", images["busybox"])], networks=[Network(name="default")]))
    plan = driver.plan(one)
    assert plan.remove_networks == [f"{project}_back"] and not plan.is_noop
    driver.apply(one, plan)
    assert not docker_client.networks.list(names=[f"{project}_back"])
    assert driver.plan(one).is_noop


@pytest.mark.engine
def test_an_internal_flag_change_recreates_the_network_and_its_services(driver, engine, images, deployed,
                                                                         docker_client) -> None:
    project = engine.name("netflag")

    def stack(internal: bool) -> Stack:
        return Stack(services=[svc("db", images["busybox"], networks={"back": []}),
                               svc("app", images["busybox"], networks={"default": [], "back": []}),
                               svc("web", images["busybox"])],
                     networks=[Network(name="default"), Network(name="back", internal=internal)])

    dep = deployment(project, stack(False))
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    before = {name: c[0].id for name, c in by_service(docker_client, project).items()}
    closed = deployment(project, stack(True))
    plan = driver.plan(closed)
    assert plan.recreate_networks == [f"{project}_back"]
    assert {c.service: (c.kind, c.reason) for c in plan.changes} == {
        "db": ("recreate", f"network {project}_back changes"), "app": ("recreate", f"network {project}_back changes"),
        "web": ("unchanged", "")}
    driver.apply(closed, plan)
    assert docker_client.networks.list(names=[f"{project}_back"])[0].attrs["Internal"] is True
    after = {name: c[0].id for name, c in by_service(docker_client, project).items()}
    assert after["web"] == before["web"] and after["db"] != before["db"] and after["app"] != before["app"]
    assert all(c.status == "running" for cs in by_service(docker_client, project).values() for c in cs)
    assert driver.plan(closed).is_noop


@pytest.mark.engine
def test_replicas_zero_removes_and_start_restarts_stopped(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("scale")
    stack = Stack(services=[svc("a", images["busybox"]), svc("b", images["busybox"])])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    driver.stop(dep)
    states = {s.name: s.state for s in driver.status(project)[project]}
    assert states == {"a": State.STOPPED, "b": State.STOPPED}
    scaled = Stack(services=[svc("a", images["busybox"]), svc("b", images["busybox"], replicas=0)])
    plan = driver.plan(deployment(project, scaled))
    assert plan.by_kind() == {"start": ["a"], "remove": ["b"]}
    driver.apply(deployment(project, scaled), plan)
    assert [(s.name, s.state) for s in driver.status(project)[project]] == [("a", State.RUNNING)]


@pytest.mark.engine
def test_health_gated_dependency_waits_for_healthy(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("gate")
    stack = Stack(services=[
        svc("db", images["busybox"], ready_after(2), healthcheck=READY_CHECK),
        svc("app", images["busybox"], depends_on={"db": "healthy"}),
        svc("side", images["busybox"], depends_on={"db": "started"}),
    ])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    db = docker_client.containers.get(f"{project}-db-1")
    app = docker_client.containers.get(f"{project}-app-1")
    side = docker_client.containers.get(f"{project}-side-1")
    healthy_at = min(entry["End"] for entry in db.attrs["State"]["Health"]["Log"] if entry["ExitCode"] == 0)
    assert app.attrs["State"]["StartedAt"] > healthy_at  # RFC 3339 in UTC: comparable as strings
    assert side.attrs["State"]["StartedAt"] < healthy_at  # "started" does not wait for health


@pytest.mark.engine
def test_waiting_for_health_is_woken_by_the_engine_not_by_polling(driver, engine, images, deployed,
                                                                  docker_client) -> None:
    """A service healthy after 2 s (checked every 0.3 s): the wait asks the engine a handful of times, however long
    it lasts (polling asked every 50-250 ms), and the dependent starts soon after the engine said healthy."""
    project = engine.name("woken")
    dep = deployment(project, Stack(services=[
        svc("db", images["busybox"], ready_after(2), healthcheck=READY_CHECK),
        svc("app", images["busybox"], depends_on={"db": "healthy"})]))
    deployed(dep)
    plan = driver.plan(dep)
    calls = CallLog(driver)
    driver.apply(dep, plan)
    db = docker_client.containers.get(f"{project}-db-1")
    inspects = [p for m, p in calls.calls if m == "GET" and p.endswith(f"/containers/{db.id}/json")]
    events = [p for m, p in calls.calls if p.endswith("/events")]
    assert len(inspects) <= 4 and 1 <= len(events) <= 3, calls.calls
    # just started, it has no health to look at yet: the wait listens first (no inspect between start and events)
    start = next(i for i, (m, p) in enumerate(calls.calls) if m == "POST" and p.endswith(f"/{db.id}/start"))
    after_start = calls.calls[start + 1:]
    db_calls = [c for c in after_start if db.id in c[1] or c[1].endswith("/events")]
    assert db_calls[0][1].endswith("/events"), calls.calls
    healthy_at = min(entry["End"] for entry in db.attrs["State"]["Health"]["Log"] if entry["ExitCode"] == 0)
    app = docker_client.containers.get(f"{project}-app-1")
    assert app.attrs["State"]["StartedAt"] > healthy_at


class Ailing:
    """A test component whose one service turns unhealthy two seconds after it became healthy."""

    def __init__(self, image: str):
        self.image = image

    @hookimpl
    def components(self):
        return [Component(name="ailing", description="turns unhealthy (test)")]

    @hookimpl
    def stack(self, context):
        check = HealthCheck(test=["CMD-SHELL", "test -e /tmp/ok"], interval=0.3, timeout=2, retries=2)
        return Stack(services=[svc("app", self.image, "touch /tmp/ok; sleep 2; rm /tmp/ok; exec sleep 3600",
                                   healthcheck=check)])


@pytest.mark.engine
def test_a_rerun_over_an_unhealthy_service_is_no_success(engine, images, agencystack_env, docker_client) -> None:
    """Nothing to change is not "ok" when a service is unhealthy: the re-run says which one and what to do."""
    from agencystack.lifecycle import run
    from agencystack.plugins import load
    from agencystack.testing import open_context

    plugins = load()
    assert plugins.register(Ailing(images["busybox"]), "ailing").ok
    client = engine.name("c").replace("_", "-")[-30:].strip("-")

    def install():
        return run(open_context(plugins, "ailing", "install", client=client), "install")

    try:
        assert install().summary.endswith("1 create")
        wait_until(lambda: docker_client.containers.get(f"{client}_ailing-app-1").attrs["State"]["Health"]["Status"]
                   == "unhealthy", 20, 0.3, "the service to turn unhealthy")
        with pytest.raises(ComponentError) as caught:
            install()
        assert str(caught.value) == (f"ailing for {client}: nothing to change, but app is unhealthy (see 'agencystack "
                                     f"logs ailing -c {client}'; 'agencystack restart ailing -c {client}' restarts it)")
    finally:
        run(open_context(plugins, "ailing", "uninstall", client=client), "uninstall", purge=True)


@pytest.mark.engine
def test_failing_healthcheck_names_service_with_health_output_and_logs(driver, engine, images, deployed) -> None:
    project = engine.name("unhealthy")
    stack = Stack(services=[
        svc("bad", images["busybox"], "echo booting bad; echo secret is pw-Very-Secret-123; exec sleep 3600",
            healthcheck=HealthCheck(test=["CMD-SHELL", "echo probe says no; exit 1"], interval=0.2, retries=2),
            environment={"DB_PASSWORD": "${DB_PASSWORD}"}),
        svc("after", images["busybox"], depends_on={"bad": "healthy"}),
    ])
    dep = deployment(project, stack, ENV)
    deployed(dep)
    with pytest.raises(ComponentError) as err:
        driver.apply(dep, driver.plan(dep))
    message = str(err.value)
    assert message.startswith(f"service bad of {project} is unhealthy")
    assert "probe says no" in message and "booting bad" in message
    assert "pw-Very-Secret-123" not in message  # scrubbed
    statuses = {s.name: s for s in driver.status(project)[project]}
    assert statuses["bad"].state == State.FAILED
    # its dependent was created (as compose does, while dependencies come up) but never started
    assert (statuses["after"].state, statuses["after"].detail) == (State.STARTING, "created")


@pytest.mark.engine
def test_health_timeout_and_failed_job_status(driver, engine, images, deployed) -> None:
    project = engine.name("job")
    stack = Stack(services=[
        svc("slow", images["busybox"], healthcheck=READY_CHECK, start_timeout=1.5),
        svc("ok", images["busybox"]),
        svc("job", images["busybox"], "echo job broke; exit 3", job=True),
        svc("done", images["busybox"], "echo fine", job=True),
    ])
    dep = deployment(project, stack)
    deployed(dep)
    with pytest.raises(ComponentError) as err:
        driver.apply(dep, driver.plan(dep))
    message = str(err.value)
    assert "service job of" in message and "job failed: exited (3)" in message and "job broke" in message
    assert "also failed: slow" in message
    statuses = {s.name: (s.state, s.detail) for s in driver.status(project)[project]}
    assert statuses["job"] == (State.FAILED, "exited (3)")
    assert statuses["done"] == (State.COMPLETED, "exited (0)")
    assert statuses["ok"] == (State.RUNNING, "running")
    assert statuses["slow"] == (State.STARTING, "health: starting")
    assert State.aggregate([s for s, _ in statuses.values()]) == State.FAILED
    # timeout message alone
    with pytest.raises(ComponentError, match=r"service slow of .* did not become healthy within 1.5s"):
        driver.apply(deployment(project, Stack(services=[stack.services[0]])), driver.plan(dep))


@pytest.mark.engine
def test_port_conflict_is_one_line_naming_port_and_service(driver, engine, images, deployed) -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        project = engine.name("port")
        dep = deployment(project, Stack(services=[svc("web", images["busybox"],
                                                      ports=[Port(container=80, host=port)])]))
        deployed(dep)
        with pytest.raises(ComponentError) as err:
            driver.apply(dep, driver.plan(dep))
        assert str(err.value) == (f"port 127.0.0.1:{port} for service web of {project} is already in use: "
                                  "free it or choose another port")
    finally:
        holder.close()
    # once freed, the next apply starts it (and publishes on loopback)
    driver.apply(dep, driver.plan(dep))
    status = driver.status(project)[project]
    assert [(s.name, s.state) for s in status] == [("web", State.RUNNING)]


@pytest.mark.engine
def test_missing_image_message_and_nothing_touched(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("noimage")
    stack = Stack(services=[svc("a", images["busybox"]),
                            svc("b", "agencystack-test/does-not-exist:9", command=None)])
    dep = deployment(project, stack)
    deployed(dep)
    with pytest.raises(ComponentError) as err:
        driver.apply(dep, driver.plan(dep))
    message = str(err.value)
    assert message.startswith("image agencystack-test/does-not-exist:9 for service b is not available locally "
                              "and could not be pulled (")
    assert "check the image setting" in message
    assert containers_of(docker_client, project) == []


@pytest.mark.engine
def test_two_projects_are_isolated(driver, engine, images, deployed, docker_client) -> None:
    one, two = engine.name("one"), engine.name("two")
    stack = Stack(services=[svc("a", images["busybox"]), svc("b", images["busybox"])],
                  volumes=[Volume(name="v")])
    dep1, dep2 = deployment(one, stack, client="c1"), deployment(two, stack, client="c2")
    deployed(dep1)
    deployed(dep2)
    driver.apply(dep1, driver.plan(dep1))
    driver.apply(dep2, driver.plan(dep2))
    a1 = docker_client.containers.get(f"{one}-a-1")
    assert list(a1.attrs["NetworkSettings"]["Networks"]) == [f"{one}_default"]
    code, _ = a1.exec_run(["nslookup", f"{two}-b-1"])
    assert code != 0  # no route between clients' networks
    everything = driver.status()
    assert {one, two} <= set(everything)
    driver.remove(dep1, purge=True)
    assert containers_of(docker_client, one) == []
    assert sorted(by_service(docker_client, two)) == ["a", "b"]
    assert docker_client.networks.list(names=[f"{two}_default"])
    assert docker_client.volumes.get(f"{two}_v")
    assert driver.plan(dep2).is_noop


@pytest.mark.engine
def test_remove_keeps_volumes_unless_purge_and_never_external(driver, engine, images, deployed,
                                                             docker_client) -> None:
    edge = engine.network("edge")  # owned by someone else
    shared = engine.volume("shared")
    project = engine.name("rm")
    stack = Stack(services=[svc("a", images["busybox"], volumes=[Mount(source="data", target="/data"),
                                                                 Mount(source=shared.name, target="/s")],
                                networks={"default": [], edge.name: []})],
                  volumes=[Volume(name="data"), Volume(name=shared.name, external=True)],
                  networks=[Network(name="default"), Network(name=edge.name, external=True)])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    a = docker_client.containers.get(f"{project}-a-1")
    assert set(a.attrs["NetworkSettings"]["Networks"]) == {f"{project}_default", edge.name}
    driver.remove(dep)
    assert containers_of(docker_client, project) == []
    assert not docker_client.networks.list(names=[f"{project}_default"])
    assert docker_client.volumes.get(f"{project}_data")
    driver.remove(dep, purge=True)
    with pytest.raises(Exception):
        docker_client.volumes.get(f"{project}_data")
    edge.reload()  # the external network is still there
    assert docker_client.volumes.get(shared.name)


@pytest.mark.engine
def test_purge_force_removes_every_container_at_once_and_leaves_nothing(driver, engine, images, deployed,
                                                                        docker_client) -> None:
    """uninstall --purge destroys the data, so it sends no stop (no graceful stop, no dependency order): every
    container is force-removed at once, then the networks and volumes; nothing of the project is left."""
    project = engine.name("purge")
    stack = Stack(services=[svc("db", images["busybox"], volumes=[Mount(source="data", target="/data")]),
                            svc("api", images["busybox"], depends_on={"db": "started"}, networks={"front": []}),
                            svc("web", images["busybox"], depends_on={"api": "started"}, networks={"front": []})],
                  volumes=[Volume(name="data")], networks=[Network(name="default"), Network(name="front")])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    log = CallLog(driver)
    assert driver.remove(dep, purge=True) == []
    mutations = log.mutations()
    assert not [c for c in mutations if c[1].endswith(("/stop", "/kill"))], mutations
    assert sum(c[0] == "DELETE" and "/containers/" in c[1] for c in mutations) == 3, mutations
    assert containers_of(docker_client, project) == []
    assert not docker_client.networks.list(filters={"label": f"{labels.PROJECT}={project}"})
    assert not docker_client.volumes.list(filters={"label": f"{labels.PROJECT}={project}"})


@pytest.mark.engine
def test_a_purge_after_the_owner_check_lists_the_project_once(driver, engine, images, deployed,
                                                              docker_client) -> None:
    """uninstall --purge checks who deployed the project, then removes it: that one observation (containers,
    networks and volumes, listed at once) is all the listing it does; then one DELETE per container, network and
    volume, no stop or kill, and nothing of the project is left."""
    project = engine.name("purge1")
    stack = Stack(services=[svc("db", images["busybox"], volumes=[Mount(source="data", target="/data")],
                                networks={"back": []}),
                            svc("api", images["busybox"], depends_on={"db": "started"},
                                networks={"default": [], "back": []}),
                            svc("web", images["busybox"], depends_on={"api": "started"})],
                  volumes=[Volume(name="data")], networks=[Network(name="default"), Network(name="back")])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    log = CallLog(driver)
    assert driver.directories(project) == {str(dep.directory)}
    assert driver.remove(dep, purge=True) == []
    reads = sorted(p.rsplit("/", 1)[-1] for m, p in log.calls if m == "GET")
    assert reads == ["json", "networks", "volumes"], log.calls  # containers/json, one each
    deletes = sorted(p.split("/")[2] for m, p in log.calls if m == "DELETE")
    assert deletes == ["containers"] * 3 + ["networks"] * 2 + ["volumes"], log.calls
    assert not [c for c in log.mutations() if c[0] != "DELETE"], log.calls
    assert containers_of(docker_client, project) == []
    assert not docker_client.networks.list(filters={"label": f"{labels.PROJECT}={project}"})
    assert not docker_client.volumes.list(filters={"label": f"{labels.PROJECT}={project}"})
    log.clear()
    driver.directories(project)
    driver.apply(dep, driver.plan(dep))  # what the owner check saw no longer holds: the apply looks again
    assert sorted(by_service(docker_client, project)) == ["api", "db", "web"]


@pytest.mark.engine
def test_the_owner_check_after_a_plan_is_answered_by_the_plans_listing(driver, engine, images, deployed) -> None:
    """A no-op install plans, then checks who deployed the project: the plan's container list answers, so the
    containers are listed once; after an apply (things changed) the driver asks the engine again."""
    project = engine.name("own")
    dep = deployment(project, Stack(services=[svc("a", images["busybox"])]))
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    log = CallLog(driver)
    assert driver.plan(dep).is_noop
    listed = sum(path.endswith("/containers/json") for _, path in log.calls)
    assert driver.directories(project) == {str(dep.directory)}
    assert sum(path.endswith("/containers/json") for _, path in log.calls) == listed == 1
    driver.apply(dep, driver.plan(dep))
    log.clear()
    assert driver.directories(project) == {str(dep.directory)}
    assert sum(path.endswith("/containers/json") for _, path in log.calls) == 1


@pytest.mark.engine
def test_missing_external_network_is_a_clear_error(driver, engine, images, deployed) -> None:
    project = engine.name("ext")
    name = engine.name("absent-edge")
    stack = Stack(services=[svc("a", images["busybox"], networks={name: []})],
                  networks=[Network(name=name, external=True)])
    dep = deployment(project, stack)
    deployed(dep)
    with pytest.raises(ComponentError, match=f"needs the external network '{name}', which does not exist"):
        driver.apply(dep, driver.plan(dep))


# ================================================================================================================
# engine: crash safety
# ================================================================================================================
CHILD = """
import sys
from pathlib import Path
from agencystack.engine import Deployment
from agencystack.engine.docker import DockerDriver
from agencystack.stack import Stack
project, stack_file, env_json, host = sys.argv[1:5]
import json
dep = Deployment(project=project, client="acme", component="demo", stack=Stack.model_validate_json(
    Path(stack_file).read_text()), env=json.loads(env_json), directory=Path("/tmp") / project, version="1.2.3")
driver = DockerDriver(host)
driver.apply(dep, driver.plan(dep), lambda s, m: print(s, m, flush=True))
print("DONE", flush=True)
"""


def crash_stack(image: str, flavour: str = "a") -> Stack:
    return Stack(
        services=[
            svc("db", image, ready_after(0.5), healthcheck=READY_CHECK, volumes=[Mount(source="data", target="/d")],
                environment={"F": flavour}),
            svc("api", image, depends_on={"db": "healthy"}, networks={"default": [], "back": ["api-internal"]},
                environment={"F": flavour}),
            svc("worker", image, depends_on={"db": "healthy"}, networks={"back": []}, environment={"F": flavour}),
            svc("web", image, depends_on={"api": "started"}, environment={"F": flavour}),
        ],
        volumes=[Volume(name="data")],
        networks=[Network(name="default"), Network(name="back")],
    )


def _apply_in_child(tmp_path: Path, project: str, stack: Stack) -> subprocess.Popen:
    stack_file = tmp_path / f"{project}.json"
    stack_file.write_text(stack.model_dump_json())
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = engine_env(PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(script), project, str(stack_file), "{}", engine_host()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _snapshot(docker_client: Any, project: str) -> dict[str, tuple]:
    out = {}
    for c in containers_of(docker_client, project):
        c.reload()
        out[c.name] = (c.labels[labels.SERVICE], c.labels[labels.CONFIG_HASH], c.status,
                       sorted(c.attrs["NetworkSettings"]["Networks"]),
                       (c.attrs["State"].get("Health") or {}).get("Status"))
    return out


@pytest.mark.engine
@pytest.mark.parametrize("kill_after", ["first-create", "second-create", "first-start", "recreate"])
def test_sigkill_mid_apply_then_rerun_converges(kill_after, driver, engine, images, deployed, docker_client,
                                               tmp_path) -> None:
    image = images["busybox"]
    project = engine.name(f"kill-{kill_after[:5]}")
    target = crash_stack(image, "b" if kill_after == "recreate" else "a")
    dep = deployment(project, target)
    deployed(dep)
    if kill_after == "recreate":
        first = deployment(project, crash_stack(image, "a"))
        driver.apply(first, driver.plan(first))
        old_hashes = {c.labels[labels.CONFIG_HASH] for c in containers_of(docker_client, project)}

    child = _apply_in_child(tmp_path, project, target)
    try:
        def reached() -> bool:
            cs = containers_of(docker_client, project)
            if kill_after == "first-create":
                return len(cs) >= 1
            if kill_after == "second-create":
                return len(cs) >= 2
            if kill_after == "first-start":
                return any(c.status == "running" for c in cs)
            return any(c.labels[labels.CONFIG_HASH] not in old_hashes for c in cs) or len(cs) < 4
        wait_until(lambda: reached() or child.poll() is not None, 60, 0.01, f"{kill_after} in the child apply")
    finally:
        child.send_signal(signal.SIGKILL)
        output = child.communicate()[0].decode(errors="replace")
    assert "DONE" not in output, f"the child finished before it was killed:\n{output}"

    driver.apply(dep, driver.plan(dep))  # the re-run converges
    services = by_service(docker_client, project)
    assert {name: len(cs) for name, cs in services.items()} == {"db": 1, "api": 1, "worker": 1, "web": 1}
    assert all(cs[0].name == f"{project}-{name}-1" for name, cs in services.items())
    assert driver.plan(dep).is_noop
    converged = _snapshot(docker_client, project)

    # the same state as an uninterrupted run of the same stack
    clean = engine.name(f"clean-{kill_after[:5]}")
    clean_dep = deployment(clean, target)
    deployed(clean_dep)
    driver.apply(clean_dep, driver.plan(clean_dep))
    reference = {name.replace(clean, project): (svc_, digest, status, [n.replace(clean, project) for n in nets],
                                                health)
                 for name, (svc_, digest, status, nets, health) in _snapshot(docker_client, clean).items()}
    assert converged == reference


@pytest.mark.engine
def test_interrupted_network_attachment_is_recreated(driver, engine, images, deployed, docker_client) -> None:
    project = engine.name("partial")
    stack = crash_stack(images["busybox"])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    api = docker_client.containers.get(f"{project}-api-1")
    docker_client.networks.get(f"{project}_back").disconnect(api, force=True)  # as if killed before connect
    plan = driver.plan(dep)
    assert plan.by_kind()["recreate"] == ["api"]
    driver.apply(dep, plan)
    api = docker_client.containers.get(f"{project}-api-1")
    assert set(api.attrs["NetworkSettings"]["Networks"]) == {f"{project}_default", f"{project}_back"}


@pytest.mark.engine
def test_engine_lost_mid_apply_is_engine_unreachable(engine, images, deployed, tmp_path) -> None:
    target = engine_host()
    if not target.startswith("unix://"):
        pytest.skip("needs a unix-socket engine to put a proxy in front of")
    path = str(tmp_path / "proxy.sock")
    proxy = SocketProxy(path, target[len("unix://"):])
    address = f"unix://{path}"
    flaky = DockerDriver(address)
    project = engine.name("lost")
    dep = deployment(project, Stack(services=[
        svc("db", images["busybox"], ready_after(30), healthcheck=READY_CHECK),
        svc("app", images["busybox"], depends_on={"db": "healthy"})]))
    deployed(dep)
    events: list[str] = []
    result: list[BaseException] = []

    def run() -> None:
        try:
            flaky.apply(dep, flaky.plan(dep), lambda s, m: events.append(f"{s} {m}"))
        except BaseException as exc:  # noqa: BLE001
            result.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: "db waiting for health" in events, 30, 0.05, "apply to wait for health")
    proxy.cut()
    worker.join(30)
    assert not worker.is_alive()
    assert result and isinstance(result[0], EngineUnreachable), result
    assert str(result[0]).startswith(f"cannot reach the container engine at {address}: ")


@pytest.mark.engine
def test_connecting_negotiates_the_api_version_with_one_ping_not_version(engine, docker_client, tmp_path) -> None:
    """The version comes from /_ping's API-Version header, as the docker CLI and compose take it: /version makes
    the engine ask containerd and runc first, on every command."""
    target = engine_host()
    if not target.startswith("unix://"):
        pytest.skip("needs a unix-socket engine to put a proxy in front of")
    seen: list[bytes] = []
    proxy = SocketProxy(str(tmp_path / "proxy.sock"), target[len("unix://"):], observe=lambda: seen.append)
    fresh = DockerDriver(proxy.address)
    try:
        assert fresh.ping() == docker_client.version()["ApiVersion"]
        time.sleep(0.05)  # the proxy's thread may still be forwarding
        requests = [line.split(b" ")[1].split(b"?")[0] for chunk in seen for line in chunk.split(b"\r\n")
                    if line.split(b" ")[0] in (b"GET", b"HEAD")]
        assert requests == [b"/_ping"], requests
    finally:
        fresh.close()
        proxy.cut()


# ================================================================================================================
# engine: status, logs, exec, restart, volumes, compose oracle
# ================================================================================================================
@pytest.mark.engine
def test_status_is_two_calls_list_and_oom_events_for_all_projects(driver, engine, images, deployed) -> None:
    projects = [engine.name(f"st{i}") for i in range(3)]
    for p in projects:
        dep = deployment(p, Stack(services=[svc("a", images["busybox"]),
                                            svc("j", images["busybox"], "exit 0", job=True)]))
        deployed(dep)
        driver.apply(dep, driver.plan(dep))
    calls = CallLog(driver)
    everything = driver.status()
    # the list, and beside it the engine's recent OOM events (one call for the host: see engine/resources.py);
    # memory use comes from the kernel's cgroup files, with no call per container
    assert sorted((m, p.rsplit("/", 1)[-1]) for m, p in calls.calls) == [("GET", "events"), ("GET", "json")]
    for p in projects:
        assert [(s.name, s.state, s.detail) for s in everything[p]] == [
            ("a", State.RUNNING, "running"), ("j", State.COMPLETED, "exited (0)")]
    calls.clear()
    assert list(driver.status(projects[0])) == [projects[0]]
    assert len(calls.calls) == 2
    assert driver.status(engine.name("nothing")) == {engine.name("nothing"): []}
    # status --all: one snapshot, then every project's status (as each component's status hook asks) from it
    calls.clear()
    with driver.snapshot() as taken:
        assert len(calls.calls) == 2
        for p in projects:
            mine = driver.status(p)
            assert mine == {p: taken[p]} and mine[p] is not taken[p]  # a copy: a hook may amend it
            mine[p][0].detail += " (amended)"
        assert driver.status(engine.name("nothing")) == {engine.name("nothing"): []}
        assert len(calls.calls) == 2
    assert [s.detail for s in driver.status(projects[0])[projects[0]]] == ["running", "exited (0)"]


@pytest.mark.engine
def test_logs_tail_follow_and_interleaved(driver, engine, images, deployed) -> None:
    project = engine.name("logs")
    stack = Stack(services=[
        svc("one", images["busybox"], "for i in 1 2 3 4 5; do echo one-$i; done; exec sleep 3600"),
        svc("two", images["busybox"], "i=0; while true; do i=$((i+1)); echo two-$i; sleep 0.2; done"),
    ])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    wait_until(lambda: len(list(driver.logs(dep, LogRequest(services=("two",), tail=None)))) >= 3, 10, 0.1,
               "three lines of two")
    # one's five lines too: under load its container may start (and echo) after two has printed three
    wait_until(lambda: len(list(driver.logs(dep, LogRequest(services=("one",), tail=None)))) >= 5, 10, 0.1,
               "five lines of one")
    tail = [line.text for line in driver.logs(dep, LogRequest(services=("one",), tail=2))]
    assert tail == ["one-4", "one-5"]
    everything = list(driver.logs(dep, LogRequest(tail=None)))
    assert {line.service for line in everything} == {"one", "two"}
    assert [line.text for line in everything if line.service == "one"] == [f"one-{i}" for i in range(1, 6)]

    stream = driver.logs(dep, LogRequest(services=("two",), tail=0, follow=True))
    started = time.monotonic()
    got = [next(stream).text for _ in range(3)]
    stream.close()
    assert time.monotonic() - started < 5
    numbers = [int(t.split("-")[1]) for t in got]
    assert numbers == sorted(numbers) and numbers[1] == numbers[0] + 1

    following = driver.logs(dep, LogRequest(tail=1, follow=True))
    services = {next(following).service for _ in range(4)}
    following.close()
    assert services == {"one", "two"}
    with pytest.raises(ComponentError, match="has no service"):
        list(driver.logs(dep, LogRequest(services=("nope",))))


class _Counting:
    """A binary sink that counts and keeps nothing (to prove exec streams in constant memory)."""

    def __init__(self) -> None:
        self.size = 0
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.writes += 1
        return len(data)

    def flush(self) -> None:
        pass


@pytest.mark.engine
def test_exec_streams_stdout_in_constant_memory_with_env_stdin_and_exit_code(driver, engine, images, deployed,
                                                                             tmp_path) -> None:
    project = engine.name("exec")
    dep = deployment(project, Stack(services=[svc("box", images["busybox"])]))
    deployed(dep)
    driver.apply(dep, driver.plan(dep))

    sink = _Counting()
    tracemalloc.start()
    code = driver.exec(dep, "box", ["sh", "-c", "head -c 50000000 /dev/zero"], stdout=sink)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert code == 0 and sink.size == 50_000_000 and sink.writes > 100
    assert peak < 8_000_000, f"exec held {peak} bytes"

    out = tmp_path / "out"
    err = tmp_path / "err"
    with out.open("wb") as fh, err.open("wb") as eh:
        assert driver.exec(dep, "box", ["sh", "-c", 'printf "%s" "$TOKEN"; echo oops >&2; exit 7'],
                           env={"TOKEN": "t0ken-value"}, stdout=fh, stderr=eh) == 7
    assert out.read_bytes() == b"t0ken-value"
    assert err.read_bytes() == b"oops\n"

    payload = tmp_path / "in"
    payload.write_bytes(os.urandom(3_000_000))
    got = tmp_path / "got"
    with payload.open("rb") as src, got.open("wb") as dst:
        assert driver.exec(dep, "box", ["cat"], stdin=src, stdout=dst) == 0
    assert got.read_bytes() == payload.read_bytes()
    with pytest.raises(ComponentError, match="is not running"):
        driver.stop(dep)
        driver.exec(dep, "box", ["true"], stdout=_Counting())


@pytest.mark.engine
def test_restart_is_rolling_in_dependency_order_and_waits_for_health(driver, engine, images, deployed,
                                                                      docker_client) -> None:
    project = engine.name("restart")
    stack = Stack(services=[
        svc("db", images["busybox"], "rm -f /tmp/ready; " + ready_after(0.5), healthcheck=READY_CHECK),
        svc("app", images["busybox"], depends_on={"db": "healthy"}),
        svc("once", images["busybox"], "true", job=True),
    ])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    before = {c.labels[labels.SERVICE]: c.attrs["State"]["StartedAt"] for c in containers_of(docker_client, project)}
    seen: list[tuple[str, str]] = []
    driver.restart(dep, (), lambda s, m: seen.append((s, m)))
    assert seen == [("db", "restarting"), ("db", "waiting for health"), ("db", "healthy"), ("app", "restarting")]
    after = {c.labels[labels.SERVICE]: c.attrs["State"]["StartedAt"] for c in containers_of(docker_client, project)}
    assert after["db"] > before["db"] and after["app"] > before["app"] and after["once"] == before["once"]
    seen.clear()
    driver.restart(dep, ("app",), lambda s, m: seen.append((s, m)))
    assert seen == [("app", "restarting")]


@pytest.mark.engine
def test_volume_export_import_roundtrip(driver, engine, images, deployed, docker_client, tmp_path) -> None:
    import tarfile

    project = engine.name("vol")
    stack = Stack(services=[svc("box", images["busybox"], volumes=[Mount(source="files", target="/files")])],
                  volumes=[Volume(name="files")])
    dep = deployment(project, stack)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    box = docker_client.containers.get(f"{project}-box-1")
    box.exec_run(["sh", "-c", "mkdir -p /files/sub && echo hello > /files/sub/a.txt && "
                              "head -c 3000000 /dev/urandom > /files/big.bin && chown 1234:2345 /files/sub/a.txt && "
                              "chown 999:999 /files && chmod 700 /files"])
    archive = tmp_path / "files.tar"
    with archive.open("wb") as fh:
        driver.volume_export(dep, "files", fh)
    with tarfile.open(archive) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers()}
        assert {"sub/a.txt", "big.bin"} <= names
    big = box.exec_run(["md5sum", "/files/big.bin"]).output.split()[0]

    box.exec_run(["sh", "-c", "rm -rf /files/* && echo stray > /files/stray && chown 0:0 /files && chmod 755 /files"])
    with archive.open("rb") as fh:
        driver.volume_import(dep, "files", fh)
    assert box.exec_run(["cat", "/files/sub/a.txt"]).output == b"hello\n"
    # owners and modes come back, the volume's root included (Postgres insists on its data directory's)
    assert box.exec_run(["stat", "-c", "%u:%g %a", "/files", "/files/sub/a.txt"]).output.split(b"\n")[:2] == [
        b"999:999 700", b"1234:2345 644"]
    assert box.exec_run(["md5sum", "/files/big.bin"]).output.split()[0] == big
    assert box.exec_run(["test", "-e", "/files/stray"]).exit_code == 1
    # no helper left behind
    assert sorted(by_service(docker_client, project)) == ["box"]
    assert driver.plan(dep).is_noop


@pytest.mark.engine
def test_docker_compose_recognises_the_deployment(driver, engine, images, deployed, compose_bin,
                                                  tmp_path) -> None:
    from agencystack.engine import compose

    project = engine.name("oracle")
    directory = tmp_path / "demo"
    directory.mkdir()
    dep = deployment(project, chain_stack(images["busybox"]), ENV, directory=directory)
    deployed(dep)
    driver.apply(dep, driver.plan(dep))
    (directory / "compose.yaml").write_text(compose.render(dep))
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))

    ps = subprocess.run([str(compose_bin), "-p", project, "ps", "-a", "--format", "json"], capture_output=True,
                        text=True, env=engine_env(), cwd=directory, timeout=60)
    assert ps.returncode == 0, ps.stderr
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    assert sorted(r["Service"] for r in rows) == ["cache", "db", "migrate", "web"]
    assert {r["Name"] for r in rows} == {f"{project}-{s}-1" for s in ("cache", "db", "migrate", "web")}
    assert next(r for r in rows if r["Service"] == "db")["Health"] == "healthy"

    logs = subprocess.run([str(compose_bin), "-p", project, "logs", "--no-color", "migrate"], capture_output=True,
                          text=True, env=engine_env(), timeout=60)
    assert logs.returncode == 0 and "migrated" in logs.stdout

    config = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--format", "json"],
                            capture_output=True, text=True, env=engine_env(), cwd=directory, timeout=60)
    assert config.returncode == 0, config.stderr
    resolved = json.loads(config.stdout)
    assert resolved["name"] == project
    assert resolved["services"]["db"]["environment"]["DB_PASSWORD"] == ENV["DB_PASSWORD"]  # from the .env
    assert resolved["networks"]["back"]["name"] == f"{project}_back"
    assert "pw-Very-Secret-123" not in (directory / "compose.yaml").read_text()
