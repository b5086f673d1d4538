"""Resource limits on the REAL engine: applied at create (checked in the container's config), enforced by the kernel
(a process allocating past its memory limit is OOM-killed, and status says so), changed in place (same container
id), per client (two clients' limits are independent).

This machine's engine (docker.io 20.10, cgroup v1, cgroupfs driver, vfs storage) enforces memory limits:
``docker run --memory 32m`` with a process allocating 100 MB gets that process OOM-killed and ``State.OOMKilled``
set (checked by hand and by :func:`test_the_kernel_here_enforces_memory_limits` below, which the other OOM tests
need: if it fails, they are not evidence of anything).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from agencystack.engine import Deployment
from agencystack.engine import resources
from agencystack.limits import Limits
from agencystack.results import State
from agencystack.stack import Service, Stack
from agencystack.testing import free_port
from tests.engine.helpers import wait_until

pytestmark = pytest.mark.engine
M = 1024**2
#: allocate in the shell itself (a command substitution is held in the shell's memory)
ALLOCATE = 'x=$(head -c 200m /dev/zero | tr "\\0" a); echo survived'


@pytest.fixture
def deploy(deployed: Any, engine: Any, images: dict[str, str]) -> Any:
    def make(services: list[Service], client: str = "acme") -> Deployment:
        project = engine.name("lim").replace("-", "_")
        dep = Deployment(project=project, client=client, component="demo", stack=Stack(services=services), env={},
                         directory=Path("/tmp") / project, version="1")
        deployed(dep)
        return dep

    return make


def sleeper(image: str, limits: Limits, name: str = "app", command: str = "exec sleep 3600", **kw: Any) -> Service:
    return Service(name=name, image=image, command=["sh", "-c", command], init=True, stop_grace_period=1,
                   limits=limits, **kw)


def host_config(docker_client: Any, project: str, service: str) -> dict[str, Any]:
    return docker_client.api.inspect_container(f"{project}-{service}-1")["HostConfig"]


def test_the_kernel_here_enforces_memory_limits(engine: Any, images: dict[str, str]) -> None:
    code, output = engine.run_once(images["busybox"], ["sh", "-c", ALLOCATE], mem_limit="32m", memswap_limit="32m")
    assert "survived" not in output and code == 137, (code, output)


def test_a_service_gets_its_limits_in_its_container_config(driver, deploy, images, docker_client) -> None:
    dep = deploy([sleeper(images["busybox"], Limits(memory="64m", memory_reservation="32m", cpus=0.5, pids=128))])
    driver.apply(dep, driver.plan(dep))
    hc = host_config(docker_client, dep.project, "app")
    assert (hc["Memory"], hc["MemorySwap"], hc["MemoryReservation"], hc["NanoCpus"], hc["PidsLimit"]) == (
        64 * M, 64 * M, 32 * M, 500_000_000, 128)
    assert driver.plan(dep).is_noop


def test_a_process_allocating_past_the_limit_is_oom_killed_and_status_says_so(driver, deploy, images) -> None:
    dep = deploy([sleeper(images["busybox"], Limits(memory="32m"), command=f"sleep 0.5; {ALLOCATE}; sleep 3600",
                          restart="no")])
    driver.apply(dep, driver.plan(dep))
    status = wait_until(lambda: next((s for s in driver.status(dep.project)[dep.project]
                                      if s.oom_killed and s.state == State.FAILED), None),
                        30, message="the OOM-killed service failed in status")
    assert "OOM-killed at its memory limit (32 MiB)" in status.detail and status.memory_limit == 32 * M


def test_a_service_the_kernel_kills_and_the_engine_restarts_still_shows_the_oom_kill(driver, deploy, images) -> None:
    """With a restart policy the container is running again a moment later: the engine's OOM events find it."""
    dep = deploy([sleeper(images["busybox"], Limits(memory="32m"), command=f"sleep 1; {ALLOCATE}; sleep 3600",
                          restart="unless-stopped")])
    driver.apply(dep, driver.plan(dep))
    status = wait_until(lambda: next((s for s in driver.status(dep.project)[dep.project]
                                      if s.oom_killed and "restart" in s.detail), None),
                        30, message="the OOM kill and the restart in status")
    assert "OOM-killed at its memory limit (32 MiB)" in status.detail  # "and restarted (N restarts)" or "restarting (N restarts)"


def test_an_oom_kill_inside_a_running_service_shows_with_its_use(driver, deploy, images, docker_client) -> None:
    dep = deploy([sleeper(images["busybox"], Limits(memory="32m"))])
    driver.apply(dep, driver.plan(dep))
    before = driver.status(dep.project)[dep.project][0]
    assert before.memory_limit == 32 * M and before.memory_used is not None and 0 < before.memory_used < 32 * M
    assert not before.oom_killed
    code, output = docker_client.containers.get(f"{dep.project}-app-1").exec_run(["sh", "-c", ALLOCATE])
    assert code == 137 and b"survived" not in output
    after = driver.status(dep.project)[dep.project][0]
    assert after.state == State.RUNNING and after.oom_killed and "OOM-killed" in after.detail


def test_a_limit_change_is_applied_in_place(driver, deploy, images, docker_client) -> None:
    service = sleeper(images["busybox"], Limits(memory="64m", cpus=0.5, pids=128))
    dep = deploy([service])
    driver.apply(dep, driver.plan(dep))
    first = docker_client.api.inspect_container(f"{dep.project}-app-1")
    bigger = Deployment(**{**dep.__dict__, "stack": Stack(services=[service.model_copy(
        update={"limits": Limits(memory="128m", memory_reservation="64m", cpus=1, pids=256)})])})
    plan = driver.plan(bigger)
    assert [(c.kind, "in place" in c.reason) for c in plan.changes] == [("update", True)]
    driver.apply(bigger, plan)
    now = docker_client.api.inspect_container(f"{dep.project}-app-1")
    assert now["Id"] == first["Id"] and now["State"]["StartedAt"] == first["State"]["StartedAt"]  # no restart
    hc = now["HostConfig"]
    assert (hc["Memory"], hc["MemoryReservation"], hc["NanoCpus"], hc["PidsLimit"]) == (
        128 * M, 64 * M, 1_000_000_000, 256)
    assert driver.plan(bigger).is_noop  # the label still says 64m: the plan asks the engine, which has 128m
    # a removed limit cannot be unset in place: recreated
    unlimited = Deployment(**{**dep.__dict__, "stack": Stack(services=[service.model_copy(
        update={"limits": Limits(memory="128m")})])})
    assert [c.kind for c in driver.plan(unlimited).changes] == ["recreate"]


def test_a_memory_limit_below_what_the_service_uses_recreates_it_under_the_limit(driver, deploy, images,
                                                                                  docker_client) -> None:
    """The kernel refuses to shrink a cgroup below its use (no swap to push it to): that one container is replaced."""
    holds = ("l=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); "
             "[ \"$l\" -gt 33554432 ] && head -c 20m /dev/zero > /dev/shm/held; exec sleep 3600")
    service = sleeper(images["busybox"], Limits(memory="64m"), command=holds)
    dep = deploy([service])
    driver.apply(dep, driver.plan(dep))
    first = docker_client.api.inspect_container(f"{dep.project}-app-1")["Id"]
    wait_until(lambda: driver.status(dep.project)[dep.project][0].memory_used > 20 * M, 10, message="20 MB held")
    smaller = Deployment(**{**dep.__dict__, "stack": Stack(services=[service.model_copy(
        update={"limits": Limits(memory="12m")})])})
    assert [c.kind for c in driver.plan(smaller).changes] == ["update"]
    said: list[str] = []
    driver.apply(smaller, driver.plan(smaller), lambda service, message: said.append(message))
    now = docker_client.api.inspect_container(f"{dep.project}-app-1")
    assert now["Id"] != first and now["HostConfig"]["Memory"] == 12 * M and now["State"]["Running"]
    assert any("recreating it under the limit" in m for m in said), said
    assert driver.plan(smaller).is_noop


def test_status_reads_memory_of_every_container_without_a_call_per_container(driver, deploy, images) -> None:
    dep = deploy([sleeper(images["busybox"], Limits(memory=f"{32 + i}m"), name=f"s{i}") for i in range(4)])
    driver.apply(dep, driver.plan(dep))
    calls: list[str] = []
    driver.api.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.path_url.split("?")[0]))
    statuses = driver.status(dep.project)[dep.project]
    assert {s.name: s.memory_limit for s in statuses} == {f"s{i}": (32 + i) * M for i in range(4)}
    assert all(s.memory_used for s in statuses)
    per_container = [c for c in calls if re.search(r"/containers/[0-9a-f]{12,}/", c)]
    assert not per_container, per_container  # no per-container stats or inspect
    # two calls, any size; status runs them beside each other, so their order is not part of the promise
    assert sorted(c.split("/", 2)[-1] for c in calls) == ["containers/json", "events"], calls


# -- through the CLI: the settings every component gets ------------------------------------------------------------
@pytest.fixture
def whoami(with_plugins, agencystack_run, images, docker_client, engine):
    made: list[str] = []

    def client() -> str:
        name = f"t{secrets.token_hex(4)}"
        made.append(name)
        return name

    yield client
    for name in made:
        agencystack_run("uninstall", "whoami", "--client-id", name, "--purge", "--yes")
        for c in docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={name}"}):
            c.remove(force=True, v=True)




def test_two_clients_limits_are_independent_and_change_in_place(whoami, agencystack_run, agencystack_env, images,
                                                                docker_client) -> None:
    """The fixture component ``whoami`` declares no limits: the settings come from the core."""
    a, b = whoami(), whoami()
    base = ["--set", f"WHOAMI_IMAGE={images['busybox']}"]
    ra = agencystack_run("install", "whoami", "-c", a, *base, "--set", f"WHOAMI_PORT={free_port()}",
                         "--set", "WHOAMI_WORKER_MEMORY=48m")
    rb = agencystack_run("install", "whoami", "-c", b, *base, "--set", f"WHOAMI_PORT={free_port()}",
                         "--set", "WHOAMI_WORKER_MEMORY=96m", "--set", "WHOAMI_WEB_CPUS=0.5")
    assert ra.exit_code == 0 and rb.exit_code == 0, ra.output + rb.output
    assert host_config(docker_client, f"{a}_whoami", "worker")["Memory"] == 48 * M
    assert host_config(docker_client, f"{b}_whoami", "worker")["Memory"] == 96 * M
    assert host_config(docker_client, f"{a}_whoami", "web")["NanoCpus"] == 0
    assert host_config(docker_client, f"{b}_whoami", "web")["NanoCpus"] == 500_000_000
    rendered = yaml.safe_load((agencystack_env / "clients" / b / "whoami" / "compose.yaml").read_text())
    assert rendered["services"]["worker"]["deploy"]["resources"] == {"limits": {"memory": "96m"}}
    assert rendered["services"]["web"]["deploy"]["resources"] == {"limits": {"cpus": "0.5"}}

    status = json.loads(agencystack_run("status", "whoami", "-c", a, "--json").stdout)[0]
    worker = next(s for s in status["services"] if s["name"] == "worker")
    assert worker["memory_limit"] == 48 * M and worker["memory_used"] > 0
    table = agencystack_run("status", "whoami", "-c", a).stdout
    assert "MEMORY" in table and "48 MiB" in table

    # a limit change: planned as an in-place update, applied without a new container; b untouched
    before = {c: docker_client.api.inspect_container(f"{c}_whoami-worker-1")["Id"] for c in (a, b)}
    plan = agencystack_run("plan", "whoami", "-c", a, "--set", "WHOAMI_WORKER_MEMORY=64m")
    assert "update    worker" in plan.stdout and "in place" in plan.stdout, plan.stdout
    again = agencystack_run("install", "whoami", "-c", a, "--set", "WHOAMI_WORKER_MEMORY=64m")
    assert again.exit_code == 0 and "1 update" in again.stdout, again.output
    assert {c: docker_client.api.inspect_container(f"{c}_whoami-worker-1")["Id"] for c in (a, b)} == before
    assert host_config(docker_client, f"{a}_whoami", "worker")["Memory"] == 64 * M
    assert host_config(docker_client, f"{b}_whoami", "worker")["Memory"] == 96 * M
    assert "no changes" in agencystack_run("install", "whoami", "-c", a).stdout  # the saved setting sticks

    # an OOM kill names the setting to raise
    docker_client.containers.get(f"{a}_whoami-worker-1").exec_run(["sh", "-c", ALLOCATE])
    result = agencystack_run("status", "whoami", "-c", a, "--json")
    worker = next(s for s in json.loads(result.stdout)[0]["services"] if s["name"] == "worker")
    assert worker["oom_killed"] and "raise it with WHOAMI_WORKER_MEMORY=<size> (now 64 MiB)" in worker["detail"]


@pytest.mark.parametrize(("setting", "message"), [
    ("WHOAMI_WORKER_MEMORY=12x", "invalid setting WHOAMI_WORKER_MEMORY: invalid size '12x'"),
    ("WHOAMI_WORKER_MEMORY=1m", "below the engine's minimum of 6 MiB"),
    ("WHOAMI_WORKER_CPUS=lots", "invalid CPUs 'lots'"),
    ("WHOAMI_WORKER_PIDS=4", "below the minimum of 16"),
    ("WHOAMI_WROKER_MEMORY=64m", "no service 'wroker' (services: init, web, worker)"),
    ("WHOAMI_WORKER_MEMORY_RESERVATION=128m", "above the memory limit"),
])
def test_bad_limit_settings_exit_2_and_change_nothing(whoami, agencystack_run, agencystack_env, images, docker_client,
                                                      setting, message) -> None:
    client = whoami()
    args = ["--set", f"WHOAMI_IMAGE={images['busybox']}", "--set", setting]
    if "RESERVATION" in setting:
        args += ["--set", "WHOAMI_WORKER_MEMORY=64m"]
    result = agencystack_run("install", "whoami", "-c", client, *args)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output, result.output
    assert not (agencystack_env / "clients" / client / "whoami" / ".env").exists()
    assert not docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={client}"})


def test_install_refuses_to_overcommit_past_the_ratio(whoami, agencystack_run, agencystack_env, images,
                                                      docker_client, monkeypatch) -> None:
    client = whoami()
    host = resources.host_memory(docker_client.api)
    monkeypatch.setenv("AGENCYSTACK_MEMORY_OVERCOMMIT", "1")
    too_much = f"{host // M + 1024}m"  # more than the whole host, on one service
    result = agencystack_run("install", "whoami", "-c", client, "--set", f"WHOAMI_IMAGE={images['busybox']}",
                             "--set", f"WHOAMI_WORKER_MEMORY={too_much}")
    assert result.exit_code == 1 and "refusing to overcommit memory" in result.stderr, result.output
    assert "AGENCYSTACK_MEMORY_OVERCOMMIT=1" in result.stderr and "WHOAMI_WORKER_MEMORY" in result.stderr
    assert not docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={client}"})
    doctor = agencystack_run("doctor", "--json")
    check = next(c for c in json.loads(doctor.stdout) if c["name"] == "memory limits")
    assert "memory limits total" in check["detail"]
