"""Engine driver against docker compose v2 (the static binary) on the same engine and the same rendered stack.

One run, four commands:

- fresh install: ``DockerDriver.plan`` + ``apply`` of a 10-service busybox stack (health checks, a dependency chain
  gated on health and on a job's completion) vs ``docker-compose -p X -f compose.yaml up -d`` of the compose file
  rendered from the very same deployment;
- no-op re-install: ``plan`` (+ ``apply`` only if it is not a no-op, as ``install`` does) vs ``up -d`` again;
- status over 50 projects: one ``status()`` vs ``docker-compose -p X ps`` for each of the 50;
- uninstall with volumes: ``remove(purge=True)`` (parallel stops, serial removals: see DockerDriver.remove) vs
  ``down -v``; the networks the engine would not release afterwards (Docker 20.10's stale endpoint count) are
  counted for both.

"ours" is timed in-process (the driver; the CLI's interpreter start-up is bench/cli_startup.py's business), and also
as a fresh ``python`` process doing the same (imports included) for transparency. Engine API calls are counted for
ours with a response hook on the SDK's session, for compose with a counting unix-socket proxy in front of the engine
(separate, untimed runs). Figures are medians of RUNS repetitions (fresh projects each time), ours and compose
interleaved; the ratio is the median of the per-repetition ratios (robust to load spikes on a shared machine).
Targets: no-op <= 0.5x compose, fresh <= 1.0x, status-all <= 0.2x, uninstall <= 1.5x. Prints a table, then ONE JSON line.

Usage: python bench/engine.py   (engine: $DOCKER_HOST, default the test engine; images built if missing)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agencystack.engine import compose  # noqa: E402
from agencystack.engine import Deployment  # noqa: E402
from agencystack.engine.docker import DockerDriver  # noqa: E402
from agencystack.stack import HealthCheck, Mount, Network, Service, Stack, Volume  # noqa: E402
from tests.engine.helpers import SocketProxy  # noqa: E402
from tests.images import build  # noqa: E402

RUNS = 5
STATUS_PROJECTS = 50
TARGETS = {"fresh": 1.0, "noop": 0.5, "status_all": 0.2, "uninstall": 1.5}
ENV = {"DB_PASSWORD": "bench-secret-value", "APP_KEY": "bench-app-key"}


# -- the stack ---------------------------------------------------------------------------------------------------
def bench_stack(image: str) -> Stack:
    def s(name: str, command: str = "exec sleep 3600", **kw: Any) -> Service:
        kw.setdefault("init", True)
        kw.setdefault("stop_grace_period", 2)
        return Service(name=name, image=image, command=["sh", "-c", command], **kw)

    ready = "sleep 0.3; touch /tmp/ready; exec sleep 3600"
    check = HealthCheck(test=["CMD-SHELL", "test -e /tmp/ready"], interval=0.5, timeout=2, retries=20)
    return Stack(
        services=[
            s("db", ready, healthcheck=check, environment={"PASSWORD": "${DB_PASSWORD}"},
              volumes=[Mount(source="dbdata", target="/data")], networks={"back": []}),
            s("cache", ready, healthcheck=check, networks={"back": []}),
            s("migrate", "echo migrating; sleep 0.2", job=True, depends_on={"db": "healthy"},
              networks={"back": []}),
            s("api", ready, healthcheck=check, depends_on={"migrate": "completed", "cache": "healthy"},
              environment={"KEY": "${APP_KEY}"}, networks={"default": ["backend"], "back": []}),
            s("worker", depends_on={"db": "healthy", "cache": "healthy"}, networks={"back": []}),
            s("web", depends_on={"api": "healthy"}),
            s("proxy", depends_on={"web": "started"}),
            s("metrics"),
            s("logs", volumes=[Mount(source="logdata", target="/logs")]),
            s("cron", depends_on={"db": "started"}, networks={"back": []}),
        ],
        volumes=[Volume(name="dbdata"), Volume(name="logdata")],
        networks=[Network(name="default"), Network(name="back", internal=True)],
    )


def small_stack(image: str) -> Stack:
    """Two services and no network: the engine's default address pools hold ~30 bridge networks, not 50."""
    return Stack(services=[
        Service(name="app", image=image, command=["sh", "-c", "exec sleep 3600"], init=True, stop_grace_period=1,
                networks={}),
        Service(name="once", image=image, command=["true"], job=True, networks={}),
    ], networks=[])


# -- counting ----------------------------------------------------------------------------------------------------
class HookCounter:
    def __init__(self, driver: DockerDriver):
        self.count = 0
        driver.api.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.count += 1

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


_REQUEST = re.compile(rb"(?:^|\r\n)(?:GET|POST|PUT|DELETE|HEAD) /\S* HTTP/1\.[01]\r\n")


class RequestCounter:
    """Counts the HTTP requests compose's connections send through the proxy (one counter per connection)."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def connection(self):
        tail = b"\r\n"

        def seen(data: bytes) -> None:
            nonlocal tail
            found = len(_REQUEST.findall(tail + data))
            with self._lock:
                self.count += found
            tail = data[-2:]

        return seen

    def take(self) -> int:
        time.sleep(0.05)
        with self._lock:
            count, self.count = self.count, 0
        return count


# -- helpers -----------------------------------------------------------------------------------------------------
def deployment(project: str, stack: Stack, directory: Path) -> Deployment:
    return Deployment(project=project, client="bench", component="demo", stack=stack, env=ENV, directory=directory,
                      version="bench", secret_keys=frozenset(ENV))


def write_compose(dep: Deployment) -> Path:
    dep.directory.mkdir(parents=True, exist_ok=True)
    (dep.directory / "compose.yaml").write_text(compose.render(dep))
    (dep.directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    return dep.directory / "compose.yaml"


def compose_run(binary: Path, project: str, args: list[str], host: str, cwd: Path | None = None) -> float:
    env = dict(os.environ, DOCKER_HOST=host)
    argv = [str(binary), "-p", project] + (["-f", str(cwd / "compose.yaml")] if cwd else []) + args
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()[-500:]}")
    return elapsed


OURS_PROCESS = """
import sys, json
from pathlib import Path
from agencystack.engine import Deployment
from agencystack.engine.docker import DockerDriver
from agencystack.stack import Stack
project, stack_json, env_json, directory, host, command = sys.argv[1:7]
driver = DockerDriver(host)
if command == "status":
    driver.status()
elif command == "uninstall":
    driver.remove(Deployment(project=project, client="bench", component="demo", env={}, directory=Path(directory),
                             stack=Stack.model_validate_json(stack_json)), purge=True)
else:
    dep = Deployment(project=project, client="bench", component="demo", stack=Stack.model_validate_json(stack_json),
                     env=json.loads(env_json), directory=Path(directory), version="bench")
    plan = driver.plan(dep)
    if not plan.is_noop:
        driver.apply(dep, plan)
"""


def ours_process(dep: Deployment, host: str, command: str = "install") -> float:
    argv = [sys.executable, "-c", OURS_PROCESS, dep.project, dep.stack.model_dump_json(), json.dumps(dict(dep.env)),
            str(dep.directory), host, command]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    return time.perf_counter() - started


def remove_all(driver: DockerDriver, deployments: list[Deployment]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda d: driver.remove(d, purge=True), deployments))


def install(driver: DockerDriver, dep: Deployment) -> float:
    started = time.perf_counter()
    plan = driver.plan(dep)
    if not plan.is_noop:
        driver.apply(dep, plan)
    return time.perf_counter() - started


# -- the run -----------------------------------------------------------------------------------------------------
def main() -> int:
    host = build.docker_host()
    if not host.startswith("unix://"):
        print(f"bench/engine.py needs a unix-socket engine (DOCKER_HOST={host})", file=sys.stderr)
        return 2
    image = build.ensure_images(only=["busybox"])["busybox"]
    binary = build.compose_binary()
    driver = DockerDriver(host)
    driver.ping()
    hook = HookCounter(driver)
    counter = RequestCounter()
    proxy = SocketProxy(tempfile.mktemp(prefix="bench-engine-", suffix=".sock"), host[len("unix://"):],
                        observe=counter.connection)
    tag = f"bench{os.getpid():x}{secrets.token_hex(2)}"
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    made: list[Deployment] = []

    def new(kind: str, stack: Stack) -> Deployment:
        dep = deployment(f"{tag}-{kind}{len(made)}", stack, work / f"{kind}{len(made)}")
        made.append(dep)
        write_compose(dep)
        return dep

    figures: dict[str, Any] = {}
    try:
        stack = bench_stack(image)
        fresh_ours, fresh_compose, noop_ours, noop_compose = [], [], [], []
        noop_ours_proc, fresh_ours_proc = [], []
        down_ours, down_compose, down_ours_proc, left = [], [], [], {"ours": 0, "compose": 0}
        calls: dict[str, dict[str, int]] = {}
        for run in range(RUNS):  # interleaved, so that machine noise hits both alike
            ours = new("ours", stack)
            hook.take()
            fresh_ours.append(install(driver, ours))
            calls.setdefault("fresh", {})["ours"] = hook.take()
            theirs = new("compose", stack)
            fresh_compose.append(compose_run(binary, theirs.project, ["up", "-d"], host, theirs.directory))
            noop_ours.append(install(driver, ours))
            calls.setdefault("noop", {})["ours"] = hook.take()
            noop_compose.append(compose_run(binary, theirs.project, ["up", "-d"], host, theirs.directory))
            noop_ours_proc.append(ours_process(ours, host))
            process = new("oursproc", stack)
            fresh_ours_proc.append(ours_process(process, host))
            # uninstall (the engine's address pools are finite: every run removes what it made)
            hook.take()
            started = time.perf_counter()
            left["ours"] += len(driver.remove(ours, purge=True))
            down_ours.append(time.perf_counter() - started)
            calls.setdefault("uninstall", {})["ours"] = hook.take()
            try:
                down_compose.append(compose_run(binary, theirs.project, ["down", "-v"], host, theirs.directory))
            except RuntimeError as exc:  # e.g. Docker 20.10's stale endpoint count: the network stays
                left["compose"] += 1
                down_compose.append(float("nan"))
                print(f"compose down: {exc}", file=sys.stderr)
            down_ours_proc.append(ours_process(process, host, "uninstall"))
            remove_all(driver, [ours, theirs, process])
        # compose's call counts, through the counting proxy (untimed)
        counted = new("compose", stack)
        counter.take()
        compose_run(binary, counted.project, ["up", "-d"], proxy.address, counted.directory)
        calls["fresh"]["compose"] = counter.take()
        compose_run(binary, counted.project, ["up", "-d"], proxy.address, counted.directory)
        calls["noop"]["compose"] = counter.take()
        compose_run(binary, counted.project, ["down", "-v"], proxy.address, counted.directory)
        calls["uninstall"]["compose"] = counter.take()
        remove_all(driver, [counted])

        # 50 small projects for status
        smalls = [new("status", small_stack(image)) for _ in range(STATUS_PROJECTS)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda d: install(driver, d), smalls))
        status_ours, status_compose = [], []
        for _ in range(RUNS):
            hook.take()
            started = time.perf_counter()
            everything = driver.status()
            status_ours.append(time.perf_counter() - started)
            calls["status_all"] = {"ours": hook.take()}
            assert all(len(everything[d.project]) == 2 for d in smalls)
            started = time.perf_counter()
            for d in smalls:
                compose_run(binary, d.project, ["ps", "-a", "--format", "json"], host)
            status_compose.append(time.perf_counter() - started)
        counter.take()
        for d in smalls:
            compose_run(binary, d.project, ["ps", "-a", "--format", "json"], proxy.address)
        calls["status_all"]["compose"] = counter.take()
        status_ours_proc = [ours_process(smalls[0], host, "status") for _ in range(RUNS)]

        med = statistics.median
        samples = {"fresh": (fresh_ours, fresh_compose, fresh_ours_proc),
                   "noop": (noop_ours, noop_compose, noop_ours_proc),
                   "status_all": (status_ours, status_compose, status_ours_proc),
                   "uninstall": (down_ours, down_compose, down_ours_proc)}
        labels = {"fresh": "fresh install (10 services)", "noop": "no-op re-install",
                  "status_all": f"status of {STATUS_PROJECTS} projects", "uninstall": "uninstall (purge)"}
        print(f"{'command':<30} {'ours ms':>9} {'compose ms':>11} {'ratio':>6} {'target':>7}  "
              f"{'ours calls':>10} {'compose calls':>13}  {'ours as process ms':>18}")
        ok = True
        for key, (ours_l, compose_l, proc_l) in samples.items():
            ours_s, compose_s, proc_s = med(ours_l), med(compose_l), med(proc_l)
            # ratio: the median of the per-run ratios (each run's pair ran back to back, so a load spike on a
            # shared machine hits both sides of a pair); the ratio of the medians is reported beside it
            pairs = [(o, c) for o, c in zip(ours_l, compose_l, strict=True) if c == c]  # NaN: compose failed
            ours_s, compose_s = med([o for o, _ in pairs]), med([c for _, c in pairs])
            ratio = med([o / c for o, c in pairs])
            met = ratio <= TARGETS[key]
            ok &= met
            print(f"{labels[key]:<30} {ours_s * 1000:>9.1f} {compose_s * 1000:>11.1f} {ratio:>6.3f} "
                  f"{'<=' + str(TARGETS[key]):>7}{'' if met else ' MISSED':<0}  {calls[key]['ours']:>10} "
                  f"{calls[key]['compose']:>13}  {proc_s * 1000:>18.1f}")
            figures[key] = {"ours_ms": round(ours_s * 1000, 1), "compose_ms": round(compose_s * 1000, 1),
                            "ratio": round(ratio, 4), "ratio_of_medians": round(ours_s / compose_s, 4),
                            "target": TARGETS[key], "met": met,
                            "ours_calls": calls[key]["ours"], "compose_calls": calls[key]["compose"],
                            "ours_process_ms": round(proc_s * 1000, 1),
                            "ours_process_ratio": round(proc_s / compose_s, 4)}
        figures["samples_ms"] = {
            "fresh_ours": [round(x * 1000, 1) for x in fresh_ours],
            "fresh_compose": [round(x * 1000, 1) for x in fresh_compose],
            "noop_ours": [round(x * 1000, 1) for x in noop_ours],
            "noop_compose": [round(x * 1000, 1) for x in noop_compose],
            "status_ours": [round(x * 1000, 1) for x in status_ours],
            "status_compose": [round(x * 1000, 1) for x in status_compose],
            "fresh_ours_process": [round(x * 1000, 1) for x in fresh_ours_proc],
            "noop_ours_process": [round(x * 1000, 1) for x in noop_ours_proc],
            "status_ours_process": [round(x * 1000, 1) for x in status_ours_proc],
            "uninstall_ours": [round(x * 1000, 1) for x in down_ours],
            "uninstall_compose": [round(x * 1000, 1) for x in down_compose],
        }
        figures["networks_left_behind"] = left
        print(f"networks the engine kept after an uninstall: ours {left['ours']}, compose {left['compose']} "
              f"(of {RUNS} each)")
        figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps({"bench": "engine", "runs": RUNS, "status_projects": STATUS_PROJECTS,
                          "services": len(stack.services), "all_targets_met": ok, "figures": figures}))
        return 0
    finally:
        remove_all(driver, made)
        proxy.cut()
        driver.close()


if __name__ == "__main__":
    sys.exit(main())
