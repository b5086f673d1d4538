"""The Swarm driver's commands, timed as processes, against the docker CLI's own ``docker stack`` on the same
three-node swarm: ``status --all`` over 20 clients, and a fresh install of the 10-service bench stack.

One run brings up its own three-node bed (tests/swarm/testbed.sh with a prefix, subnet and roots of its own:
``asb``, 10.252.0.0/24, /run/agencystack-swarm-bench, /var/lib/agencystack-swarm-bench; another bed may run beside
it) and tears it down at the end. The component of bench/fixture (``benchstack``) is pip-installed into a temporary
directory as a third party's would be, and the swarm is registered with ``agencystack hosts add sb --docker-host
<manager> --swarm``:

- **status of 20 clients**: ``agencystack status --all --host sb`` vs ``docker stack ps <project>`` for each of
  the 20 clients' stacks (the sum; the Swarm driver's services carry ``com.docker.stack.namespace``, so the peer
  reads the very same stacks). The clients are the fixture's 2-service shape (two plain services each: 40 tasks on
  three nodes); ``--host sb``: the bench's root also has the implicit ``local`` host (the shared test engine, with
  other work's projects), which is not what is measured;
- **fresh install, 10 services**: ``agencystack install benchstack -c X --host sb`` vs ``docker stack deploy -c F
  Y`` of the compose file :func:`stack_file` makes of what ``agencystack render benchstack -c Y`` prints (the same
  images, commands, environment, health checks, volumes and networks), each timed from its start until **done**:
  every service of the stack has its desired replicas running (a task with a health check is ``running`` only once
  healthy: Swarm reports it ``starting`` before) and the job a completed task, as :func:`converged` sees it polling
  the manager every POLL seconds, started right after the command returns, for both alike (``agencystack install``
  returns once done, so its first look finds it done; ``docker stack deploy`` returns once the services are
  created). The peer starts its ten services at once: ``docker stack deploy`` ignores ``depends_on``; ours starts
  them level by level in dependency order, each level once the one before is healthy (what the stack asks);
- **the floor**: beside each pair, a process that only imports Typer, pydantic-settings and the docker SDK (as
  bench/engine.py's): for ``status --all`` the best ratio a command paying it could reach is the floor alone; for
  the fresh install the floor plus the peer's own work (its time less its start-up, ``docker --version``);
- **overhead**: ``(ours - floor) / peer`` pair by pair.

Ours and the peer's alternate in pairs (who goes first alternates); a figure's ratio is the median of its pairs'
ratios. Between fresh-install pairs both stacks are removed (untimed) and the bench waits until their containers
are gone from every node. Prints a table, then ONE JSON line (``"bench": "swarm"``). Without root, a network
namespace, dockerd or the docker CLI, or when the bed cannot start, it prints the reason and one JSON line with
``"skipped"`` and exits 0: a skip, not a failure.

Usage: python bench/swarm.py [--runs N] [--status-runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from engine import FLOOR, Warm, compile_bytecode, floor_figures, ms  # noqa: E402  (bench/engine.py)

COMPONENT = "benchstack"
FIXTURE = REPO / "bench" / "fixture"
TESTBED = REPO / "tests" / "swarm" / "testbed.sh"
SWARM = "sb"
CLIENTS = 20
FLEET_SERVICES = 2
SERVICES = 10
POLL = 0.2  # seconds between looks at the stack while waiting for "done" (both sides alike)
DONE_WITHIN = 300  # seconds a stack may take to be done before the bench gives up
TARGETS = {"status_all": 0.5, "fresh": 0.9}
LABELS = {"status_all": f"status --all --host {SWARM} ({CLIENTS} clients)", "fresh": "fresh install (10 services)"}
PEERS = {"status_all": f"{CLIENTS} x docker stack ps", "fresh": "docker stack deploy, until done"}
#: the bed of its own (tests/swarm/testbed.sh's variables): beside, never instead of, the tests' default bed
BED = {"AGENCYSTACK_SWARM_PREFIX": "asb", "AGENCYSTACK_SWARM_NET": "10.252.0",
       "AGENCYSTACK_SWARM_RUN_ROOT": "/run/agencystack-swarm-bench",
       "AGENCYSTACK_SWARM_DATA_ROOT": "/var/lib/agencystack-swarm-bench", "SWARM_IMAGES": "agencystack-test/busybox:1"}
STACK_LABEL = "com.docker.stack.namespace"


def missing() -> str | None:
    """Why this machine cannot run the bench's bed (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and three dockerd)"
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare"):
        if not shutil.which(tool):
            return f"needs {tool} (docker.io, the docker CLI, iproute2, util-linux)"
    probe = f"asb-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "cannot make a network namespace here (ip netns add failed)"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


# -- the peer's compose file ------------------------------------------------------------------------------------------
def stack_file(rendered: dict[str, Any]) -> dict[str, Any]:
    """The compose file ``docker stack deploy`` takes for the stack ``agencystack render`` printed: the same images,
    commands, environment, labels, health checks, init, grace periods, logging, volumes and networks, with what
    differs for ``docker stack deploy`` (each for its reason):

    - no top-level ``name`` and no ``depends_on``: its loader (compose file format 3) has neither; Swarm has no
      start order (stack deploy would ignore it anyway);
    - ``restart`` becomes ``deploy.restart_policy`` (``no`` -> ``none``, else ``any``), as the Swarm driver maps it;
    - ``deploy.endpoint_mode: dnsrr``: without IPVS (these engines) the service VIP does not work, the driver uses
      dnsrr too;
    - the job (``io.agencystack.job``) is ``deploy.mode: replicated-job``, the others one replica;
    - networks are ``overlay`` and attachable, as the driver makes them.
    """
    services = {}
    for name, service in rendered["services"].items():
        service = {k: v for k, v in service.items() if k not in ("depends_on", "restart")}
        job = (service.get("labels") or {}).get("io.agencystack.job") == "true"
        deploy: dict[str, Any] = {"endpoint_mode": "dnsrr", "restart_policy": {
            "condition": "none" if rendered["services"][name].get("restart") == "no" else "any"}}
        deploy.update({"mode": "replicated-job"} if job else {"replicas": 1})
        services[name] = {**service, "deploy": deploy}
    networks = {name: {**(network or {}), "driver": "overlay", "attachable": True}
                for name, network in (rendered.get("networks") or {}).items()}
    return {"version": "3.9", "services": services, "networks": networks, "volumes": rendered.get("volumes") or {}}


# -- "done", the same for both ----------------------------------------------------------------------------------------
def converged(api: Any, stack: str, services: int) -> bool:
    """Every one of the stack's ``services`` services has its desired replicas running (Swarm: healthy, for a task
    with a health check) and a job a completed task."""
    found = api.services(filters={"label": f"{STACK_LABEL}={stack}"})
    if len(found) < services:
        return False
    tasks = api.tasks(filters={"service": [s["ID"] for s in found]})
    for service in found:
        mine = [t for t in tasks if t["ServiceID"] == service["ID"]]
        states = [(t.get("Status") or {}).get("State") for t in mine]
        mode = service["Spec"].get("Mode") or {}
        if "ReplicatedJob" in mode:
            if "complete" not in states:
                return False
        elif states.count("running") < int((mode.get("Replicated") or {}).get("Replicas", 1)):
            return False
    return True


def until_done(api: Any, stack: str, services: int, started: float) -> float:
    """Seconds from ``started`` until :func:`converged` first holds."""
    deadline = time.monotonic() + DONE_WITHIN
    while not converged(api, stack, services):
        if time.monotonic() > deadline:
            raise RuntimeError(f"stack {stack} is not done after {DONE_WITHIN} s")
        time.sleep(POLL)
    return time.perf_counter() - started


def engine_busy(api: Any, stack: str) -> float:
    """Seconds during which at least one of the stack's services was created and not yet ready (its running task
    healthy, a job's complete), on the manager's clock: the time the engine was working for the stack. Of a
    command's time, the rest is its own (start-up, CPU, the gaps between one level ready and the next created)."""
    found = api.services(filters={"label": f"{STACK_LABEL}={stack}"})
    tasks = api.tasks(filters={"service": [s["ID"] for s in found]})
    spans = []
    for service in found:
        done = [_when(t["Status"]["Timestamp"]) for t in tasks if t["ServiceID"] == service["ID"]
                and t["Status"].get("State") in ("running", "complete")]
        if done:
            spans.append((_when(service["CreatedAt"]), max(done)))
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def _when(stamp: str) -> float:
    """An engine timestamp (RFC 3339, nanoseconds) as seconds since the epoch."""
    from datetime import datetime

    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (fraction or "0"))


# -- the commands ---------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: Path, manager: str, nodes: list[str], tag: str):
        import docker

        self.work, self.manager, self.nodes, self.tag = work, manager, nodes, tag
        self.site = work / "site"
        self.env = dict(os.environ, AGENCYSTACK_ROOT=str(work / "root"), AGENCYSTACK_LOG_DIR=str(work / "log"),
                        XDG_CACHE_HOME=str(work / "cache"),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(self.site), os.environ.get("PYTHONPATH")])))
        self.env.pop("AGENCYSTACK_PLUGINS", None)  # every installed plugin loads, as on an operator's host
        script = Path(sys.executable).parent / "agencystack"
        self.script = str(script if script.exists() else shutil.which("agencystack") or "agencystack")
        self.docker = shutil.which("docker") or "docker"
        self.peer_env = dict(self.env, DOCKER_HOST=manager, BENCHSTACK_DB_PASSWORD=secrets.token_hex(24),
                             DOCKER_CONFIG=str(work / "docker-config"))
        self.api = docker.APIClient(base_url=manager, version="auto", timeout=120)
        self.node_apis = [docker.APIClient(base_url=n, version="auto", timeout=120) for n in nodes]
        self.cpu = {"ours": 0.0, "peer": 0.0}  # CPU seconds (user + system) the commands of each side used

    def client(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def cli(self, *args: str, check: bool = True) -> float:
        started, cpu = time.perf_counter(), _children_cpu()
        result = subprocess.run([self.script, *args], env=self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        self.cpu["ours"] += _children_cpu() - cpu
        if check and result.returncode != 0:
            raise RuntimeError(f"agencystack {' '.join(args)} exited {result.returncode}: "
                               f"{result.stderr.strip()[-800:]}")
        return elapsed

    def peer(self, *args: str) -> float:
        started, cpu = time.perf_counter(), _children_cpu()
        result = subprocess.run([self.docker, *args], env=self.peer_env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        self.cpu["peer"] += _children_cpu() - cpu
        if result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()[-800:]}")
        return elapsed

    def floor(self) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR], env=self.env, check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - started

    def peer_startup(self) -> float:
        """``docker --version``: the peer's start-up (no engine call)."""
        started = time.perf_counter()
        subprocess.run([self.docker, "--version"], env=self.peer_env, check=True, capture_output=True)
        return time.perf_counter() - started

    def install(self, client: str) -> tuple[float, float]:
        """Ours: a fresh install of the 10-service stack, until done; and the engine's busy seconds in it."""
        started = time.perf_counter()
        self.cli("install", COMPONENT, "-c", client, "--host", SWARM)
        took = until_done(self.api, f"{client}_{COMPONENT}", SERVICES, started)
        return took, engine_busy(self.api, f"{client}_{COMPONENT}")

    def deploy(self, client: str) -> tuple[float, float]:
        """The peer: ``docker stack deploy`` of the same stack, until done; and the engine's busy seconds in it."""
        import yaml

        rendered = subprocess.run([self.script, "render", COMPONENT, "-c", client], env=self.env, check=True,
                                  capture_output=True, text=True).stdout
        path = self.work / f"{client}-stack.yaml"
        path.write_text(yaml.safe_dump(stack_file(yaml.safe_load(rendered)), sort_keys=False))
        stack = f"{client}_{COMPONENT}"
        started = time.perf_counter()
        self.peer("stack", "deploy", "-c", str(path), stack)
        return until_done(self.api, stack, SERVICES, started), engine_busy(self.api, stack)

    def remove(self, ours: str, theirs: str) -> None:
        """Untimed: both stacks gone, and their running containers gone from every node (a completed job's container
        stays behind on Docker 20.10: it loads nothing, the bed's removal takes it)."""
        self.cli("uninstall", COMPONENT, "-c", ours, "--purge", "--yes")
        self.peer("stack", "rm", f"{theirs}_{COMPONENT}")
        deadline = time.monotonic() + DONE_WITHIN
        where = {"label": f"{STACK_LABEL}={theirs}_{COMPONENT}"}
        while any(api.containers(filters=where) for api in self.node_apis):
            if time.monotonic() > deadline:
                raise RuntimeError(f"containers of stack {theirs}_{COMPONENT} still on the nodes")
            time.sleep(POLL)

    def close(self) -> None:
        for api in (self.api, *self.node_apis):
            api.close()


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


# -- statistics -----------------------------------------------------------------------------------------------------
def figure(key: str, ours: list[float], peer: list[float], floors: list[float], best: list[float],
           how: str) -> dict[str, Any]:
    """One figure: medians, the median of the pairs' ratios, the floor beside it and the overhead above it."""
    ratio = statistics.median(o / p for o, p in zip(ours, peer, strict=True))
    overhead = statistics.median((o - f) / p for o, p, f in zip(ours, peer, floors, strict=True))
    return {"ours": f"agencystack {LABELS[key]}", "peer": PEERS[key], "ours_ms": ms(statistics.median(ours)),
            "peer_ms": ms(statistics.median(peer)), "ratio": round(ratio, 3), "target": TARGETS[key],
            "met": ratio <= TARGETS[key], "overhead": round(overhead, 3), "overhead_target": None,
            "ours_samples_ms": [ms(x) for x in ours], "peer_samples_ms": [ms(x) for x in peer],
            **floor_figures(floors, best, how)}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the run --------------------------------------------------------------------------------------------------------
def fresh(bench: Bench, runs: int) -> dict[str, Any]:
    """Fresh-install pairs; beside the figure, where each side's time went: the engine busy with the stack (from
    the first service created to the last ready, overlaps counted once) and the rest."""
    ours_s, peer_s, floors, startups = [], [], [], []
    ours_busy, peer_busy = [], []
    cpu: dict[str, list[float]] = {"ours": [], "peer": []}
    for run in range(runs):
        ours, theirs = bench.client(f"o{run}"), bench.client(f"c{run}")
        before = dict(bench.cpu)
        if run % 2 == 0:
            mine, peer = bench.install(ours), bench.deploy(theirs)
        else:
            peer, mine = bench.deploy(theirs), bench.install(ours)
        ours_s.append(mine[0])
        ours_busy.append(mine[1])
        peer_s.append(peer[0])
        peer_busy.append(peer[1])
        for side in cpu:
            cpu[side].append(bench.cpu[side] - before[side])
        floors.append(bench.floor())
        startups.append(bench.peer_startup())
        print(f"  fresh {run + 1}/{runs}: ours {ms(mine[0]):.0f} ms (engine busy {ms(mine[1]):.0f}), docker stack "
              f"deploy {ms(peer[0]):.0f} ms (engine busy {ms(peer[1]):.0f})  load {load()}", file=sys.stderr)
        bench.remove(ours, theirs)
    best = [(f + p - c) / p for f, p, c in zip(floors, peer_s, startups, strict=True)]
    found = figure("fresh", ours_s, peer_s, floors, best,
                   "the floor, then the peer's own work (its time less its start-up, 'docker --version': "
                   f"{ms(statistics.median(startups))} ms)")
    found["engine_busy_ms"] = {"ours": ms(statistics.median(ours_busy)), "peer": ms(statistics.median(peer_busy))}
    found["outside_engine_ms"] = {
        "ours": ms(statistics.median(t - b for t, b in zip(ours_s, ours_busy, strict=True))),
        "peer": ms(statistics.median(t - b for t, b in zip(peer_s, peer_busy, strict=True)))}
    found["cpu_ms"] = {side: ms(statistics.median(found_)) for side, found_ in cpu.items()}
    return found


def status_all(bench: Bench, warm: Warm, runs: int) -> dict[str, Any]:
    clients = [bench.client(f"f{i}") for i in range(CLIENTS)]
    for client in clients:  # in a warm interpreter: the set-up, not the figure
        warm.run("install", COMPONENT, "-c", client, "--host", SWARM, "--set", f"BENCHSTACK_SERVICES={FLEET_SERVICES}",
                 "--json")
    projects = [f"{c}_{COMPONENT}" for c in clients]
    for project in projects:
        until_done(bench.api, project, FLEET_SERVICES, time.perf_counter())
    seen = json.loads(subprocess.run([bench.script, "status", "--all", "--host", SWARM, "--json"], env=bench.env,
                                     capture_output=True, text=True, check=True).stdout)
    rows = [r for r in seen if r.get("client") in clients]
    if len(rows) != CLIENTS or any(r.get("state") != "running" for r in rows):
        raise RuntimeError(f"status --all sees {len(rows)} of the {CLIENTS} clients, not all running: "
                           f"{[(r.get('client'), r.get('state')) for r in rows]}")

    def mine() -> float:
        return bench.cli("status", "--all", "--host", SWARM)

    def peer() -> float:
        return sum(bench.peer("stack", "ps", p) for p in projects)

    ours_s, peer_s, floors = [], [], []
    cpu: dict[str, list[float]] = {"ours": [], "peer": []}
    for run in range(runs):
        before = dict(bench.cpu)
        if run % 2 == 0:
            ours_s.append(mine())
            peer_s.append(peer())
        else:
            peer_s.append(peer())
            ours_s.append(mine())
        for side in cpu:
            cpu[side].append(bench.cpu[side] - before[side])
        floors.append(bench.floor())
        print(f"  status {run + 1}/{runs}: ours {ms(ours_s[-1]):.0f} ms, {CLIENTS} x docker stack ps "
              f"{ms(peer_s[-1]):.0f} ms  load {load()}", file=sys.stderr)
    found = figure("status_all", ours_s, peer_s, floors, [f / p for f, p in zip(floors, peer_s, strict=True)],
                   "the floor alone")
    found["cpu_ms"] = {side: ms(statistics.median(found_)) for side, found_ in cpu.items()}
    return found


def report(figures: dict[str, Any], extra: dict[str, Any], started_load: list[float]) -> None:
    print(f"\n{'command':<36} {'ours ms':>9} {'peer ms':>9} {'ratio':>6} {'target':>7} {'met':>4}  peer")
    for key, f in figures.items():
        print(f"{LABELS[key]:<36} {f['ours_ms']:>9} {f['peer_ms']:>9} {f['ratio']:>6} {'<=' + str(f['target']):>7} "
              f"{'yes' if f['met'] else 'NO':>4}  {f['peer']}")
        if "cpu_ms" in f:
            print(f"  (CPU of the commands, user + system: ours {f['cpu_ms']['ours']} ms, the peer's "
                  f"{f['cpu_ms']['peer']} ms)")
        if "engine_busy_ms" in f:
            print(f"  (the engine busy with the stack: ours {f['engine_busy_ms']['ours']} ms, the peer's "
                  f"{f['engine_busy_ms']['peer']} ms; the rest: ours {f['outside_engine_ms']['ours']} ms, the peer's "
                  f"{f['outside_engine_ms']['peer']} ms)")
        print(f"  (the floor, {f['floor']}: {f['floor_ms']} ms; best ratio a command paying it can reach, "
              f"{f['floor_bound']}: {f['floor_ratio']}; overhead (ours - floor) / peer: {f['overhead']})")
    ended_load = load()
    print(f"load average: {started_load} at the start, {ended_load} at the end ({os.cpu_count()} CPUs)")
    print(json.dumps({"bench": "swarm", "skipped": None, "all_targets_met": all(f["met"] for f in figures.values()),
                      "figures": figures, **extra, "load_average": {"start": started_load, "end": ended_load},
                      "cpus": os.cpu_count()}))


def skip(reason: str, started_load: list[float]) -> int:
    print(f"bench/swarm.py skipped: {reason}", file=sys.stderr)
    print(json.dumps({"bench": "swarm", "skipped": reason, "all_targets_met": False, "figures": {},
                      "load_average": {"start": started_load, "end": load()}, "cpus": os.cpu_count()}))
    return 0


def bed(*args: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TESTBED), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **BED, "DOCKER_HOST": source})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-install pairs (default 3)")
    parser.add_argument("--status-runs", type=int, default=5, help="status --all pairs (default 5)")
    args = parser.parse_args()
    started_load = load()
    reason = missing()
    if reason:
        return skip(reason, started_load)
    from tests.images import build

    source = build.docker_host()  # the test engine: the images every node loads
    try:
        build.ensure_images(only=["busybox"])
    except Exception as exc:  # noqa: BLE001 - any reason the images cannot be had is a reason to skip
        return skip(f"the test images cannot be had from {source}: {exc}", started_load)
    began = time.perf_counter()
    up = bed("up", source=source)
    if up.returncode != 0:
        bed("down", source=source)
        return skip(f"the swarm test bed cannot start: {up.stderr.strip().splitlines()[-1:]}", started_load)
    bed_s = time.perf_counter() - began
    exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
                   if line.startswith("export "))
    manager = exports["AGENCYSTACK_SWARM_MANAGER"]
    nodes = [exports[f"AGENCYSTACK_SWARM_NODE{n}"] for n in (1, 2, 3)]
    work = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    bench = warm = None
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--no-build-isolation", "--target", str(work / "site"), str(FIXTURE)], check=True)
        compile_bytecode(work / "site")
        bench = Bench(work, manager, nodes, f"w{secrets.token_hex(2)}")
        bench.cli("hosts", "add", SWARM, "--docker-host", manager, "--swarm")
        bench.cli("components", "list")  # warms the entry-point cache, as any earlier command on a host has
        print(f"bed up in {bed_s:.1f} s; fresh-install pairs ({args.runs}), load {load()}", file=sys.stderr)
        figures = {"fresh": fresh(bench, args.runs)}
        print(f"{CLIENTS} clients, status --all pairs ({args.status_runs})", file=sys.stderr)
        warm = Warm(bench)
        figures["status_all"] = status_all(bench, warm, args.status_runs)
        report(figures, {"bed_up_s": round(bed_s, 1), "runs": args.runs, "status_runs": args.status_runs},
               started_load)
    finally:
        if warm is not None:
            warm.close()
        if bench is not None:
            bench.close()
        down = bed("down", source=source)
        if down.returncode != 0:
            print(f"testbed.sh down failed: {down.stderr.strip()[-800:]}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    return 0  # a target not met is a figure, printed as such; only a failure to measure is an error


if __name__ == "__main__":
    sys.exit(main())
