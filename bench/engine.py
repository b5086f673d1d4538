"""The commands a user types, timed as processes, against docker compose v2 on the same engine and the same stack.

One run, on the engine at $DOCKER_HOST (default the test engine), with the component of bench/fixture
(``benchstack``: ten busybox services with health checks, a job gated on a healthy database, services gated on the
job's completion, two volumes, an internal network beside the default one), pip-installed into a temporary
directory as a third party's would be:

- **fresh install**: ``agencystack install benchstack -c X`` vs ``docker-compose -p Y up -d`` of the compose file
  ``agencystack render benchstack -c Y`` printed (the same stack: images, commands, health checks, dependencies);
- **no-op re-install**: the same two commands again;
- **uninstall with the data**: ``agencystack uninstall benchstack -c X --purge --yes`` vs ``docker-compose down -v``;
- **status of 50 projects**: ``agencystack status --all`` vs ``docker-compose -p P ps -a`` for each of the 50 (a
  fleet of 2-service projects whose status hook GETs a probe URL served here: the probes the status hooks ran are
  counted, and the target asks for them);
- **the floor**: beside each pair, a process that only imports Typer, pydantic-settings and the docker SDK
  (without paramiko, as the product imports it: what every command needs, the libraries the brief names): what no
  command can beat on this interpreter. Printed with the best ratio a command paying it could reach: the floor
  alone for the no-op and ``status --all``; for the uninstall, the floor plus the peer's own engine work (its time
  less its start-up, ``docker-compose version``), since an uninstall does the same stops in the same dependency
  order, each as long as the engine takes;
- **overhead**: beside the floor, ``(ours - floor) / peer`` pair by pair: what the product costs above the
  libraries' start-up (its own target for the no-op and ``status --all``; ``met`` needs both);
- **per project**: ``status --all``'s slope from 10 to 50 projects (the fixed start-up cancels out);
- **curves**: ``status --all`` and the no-op re-install, milliseconds and engine API calls, over 10 -> 200 projects
  and 10 -> 40 services.

Every command is a fresh process typed as an operator types it (human output, no --json: ``agencystack`` from this
interpreter's bin, plugins and all; bytecode compiled first, as a pip install does), ours and the peer's
interleaved in pairs whose order alternates; a figure's ratio is the median of its pairs' ratios, so load on a
shared machine hits both sides of a pair alike. Engine API calls are
counted in separate, untimed runs through a counting unix-socket proxy (HTTP requests, for ours and compose alike).
Figures "in a warm interpreter" (``agencystack.cli.main`` called again in one process: no start-up, no imports)
follow, labelled as such; no target applies to them. The load average is printed with the figures.

Prints a table, then ONE JSON line: every figure with its peer, target and whether it is met.

Usage: python bench/engine.py [--runs N] [--quick]   (images built if missing)
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.engine.helpers import SocketProxy  # noqa: E402
from tests.images import build  # noqa: E402

COMPONENT = "benchstack"
FIXTURE = REPO / "bench" / "fixture"
STATUS_PROJECTS = 50
PROJECT_SIZES = (10, 50, 100, 200)
SERVICE_SIZES = (10, 20, 40)
FLEET_SERVICES = 2  # the fleet's projects: two plain services, no network (address pools are finite)
TARGETS = {"fresh": 0.70, "noop": 0.15, "uninstall": 0.80, "status_all": 0.20}
# on the overhead above the floor, (ours - floor) / peer, pair by pair (issue 28: what the product itself costs)
OVERHEAD_TARGETS = {"noop": 0.03, "status_all": 0.05}
STATUS_PER_PROJECT_MS = 0.5  # the slope of status --all (a process) from 10 to 50 projects
PEERS = {"fresh": "docker compose up -d", "noop": "docker compose up -d (again)",
         "uninstall": "docker compose down -v", "status_all": f"{STATUS_PROJECTS} x docker compose ps"}
# the start-up every command pays (Bench.floor): the docker SDK as agencystack.engine.sdk imports it, without the
# ssh transport's paramiko (the product loads that only for an ssh:// host)
FLOOR = "import sys; sys.modules['paramiko'] = None; import typer, pydantic_settings, docker"
LABELS = {"fresh": "fresh install (10 services)", "noop": "no-op re-install", "uninstall": "uninstall --purge",
          "status_all": f"status --all ({STATUS_PROJECTS} projects)"}


# -- counting engine API calls ------------------------------------------------------------------------------------
_REQUEST = re.compile(rb"(?:^|\r\n)(?:GET|POST|PUT|DELETE|HEAD) /\S* HTTP/1\.[01]\r\n")


class RequestCounter:
    """Counts the HTTP requests clients send through the proxy (one counter per connection)."""

    def __init__(self) -> None:
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
        time.sleep(0.05)  # the proxy's threads may still be forwarding the last chunk
        with self._lock:
            count, self.count = self.count, 0
        return count


class ProbeServer:
    """The URL the fleet's status hooks GET (``BENCHSTACK_PROBE_URL``): answers 200, counts the requests."""

    def __init__(self) -> None:
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                with counter._lock:
                    counter.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = 0
        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def take(self) -> int:
        with self._lock:
            hits, self.hits = self.hits, 0
        return hits

    def close(self) -> None:
        self.server.shutdown()


# -- the commands ---------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: Path, host: str, tag: str):
        self.work, self.host, self.tag = work, host, tag
        self.site = work / "site"
        self.env = dict(os.environ, AGENCYSTACK_ROOT=str(work / "root"), AGENCYSTACK_LOG_DIR=str(work / "log"),
                        DOCKER_HOST=host, XDG_CACHE_HOME=str(work / "cache"),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(self.site), os.environ.get("PYTHONPATH")])))
        self.env.pop("AGENCYSTACK_PLUGINS", None)  # every installed plugin loads, as on an operator's host
        script = Path(sys.executable).parent / "agencystack"
        self.script = str(script if script.exists() else shutil.which("agencystack") or "agencystack")
        self.compose_binary = str(build.compose_binary())
        self.counter = RequestCounter()
        self.proxy = SocketProxy(str(work / "engine.sock"), host[len("unix://"):], observe=self.counter.connection)
        self.probes = ProbeServer()

    def client(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def cli(self, *args: str, counted: bool = False, check: bool = True) -> float:
        env = dict(self.env, DOCKER_HOST=self.proxy.address) if counted else self.env
        started = time.perf_counter()
        result = subprocess.run([self.script, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if check and result.returncode != 0:
            raise RuntimeError(f"agencystack {' '.join(args)} exited {result.returncode}: "
                               f"{result.stderr.strip()[-800:]}")
        return elapsed

    def floor(self) -> float:
        """A process that only imports the libraries every command needs (Typer, pydantic-settings, the docker
        SDK without paramiko, as the product imports it; the brief names them): no command can start faster on this
        interpreter."""
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", FLOOR], env=self.env, check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - started

    def compose_startup(self) -> float:
        """``docker-compose version``: the peer's start-up (a process that parses its flags and exits, no engine
        call); its command's time less this is its engine work."""
        started = time.perf_counter()
        subprocess.run([self.compose_binary, "version"], env=self.env, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        return time.perf_counter() - started

    def compose(self, project: str, *args: str, directory: Path | None = None, counted: bool = False) -> float:
        env = dict(self.env, DOCKER_HOST=self.proxy.address if counted else self.host)
        argv = [self.compose_binary, "-p", project, *(["-f", str(directory / "compose.yaml")] if directory else []),
                *args]
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=directory or self.work)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()[-800:]}")
        return elapsed

    def render(self, client: str) -> Path:
        """The compose file ``agencystack render`` prints for ``client`` (and a .env for its ${KEY}s)."""
        directory = self.work / "compose" / client
        directory.mkdir(parents=True)
        rendered = subprocess.run([self.script, "render", COMPONENT, "-c", client], env=self.env, check=True,
                                  capture_output=True, text=True).stdout
        (directory / "compose.yaml").write_text(rendered)
        (directory / ".env").write_text(f"BENCHSTACK_DB_PASSWORD={secrets.token_hex(24)}\n")
        return directory


WARM = textwrap.dedent('''
    # A warm interpreter: agencystack's CLI called again and again in one process; one JSON argv per line in,
    # one JSON answer per line out (exit code and seconds).
    import contextlib, io, json, sys, time
    from agencystack.cli import main
    for line in sys.stdin:
        argv = json.loads(line)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = main(argv)
        seconds = time.perf_counter() - started
        print(json.dumps({"code": code, "seconds": seconds, "stderr": err.getvalue()[-500:]}), flush=True)
''')


class Warm:
    """One warm interpreter (see WARM): builds the fleet without paying a start-up per install, and gives the
    labelled in-process figures."""

    def __init__(self, bench: Bench):
        self.process = subprocess.Popen([sys.executable, "-c", WARM], env=bench.env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def run(self, *argv: str) -> float:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(list(argv)) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if answer["code"] != 0:
            raise RuntimeError(f"agencystack {' '.join(argv)} (warm) exited {answer['code']}: {answer['stderr']}")
        return answer["seconds"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


# -- set-up and clean-up --------------------------------------------------------------------------------------------
def compile_bytecode(site: Path) -> None:
    """Byte-compile agencystack, the installed plugins and the fixture, as a regular pip install does (with
    PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise be compiled from source at every start)."""
    import compileall
    import importlib.util

    from agencystack.plugins import discover

    packages = {"agencystack"} | {ep["value"].split(":")[0].split(".")[0] for ep in discover()}
    for name in sorted(packages):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(Path(location), quiet=1)
    compileall.compile_dir(site, quiet=1)


def clean_engine(host: str, tag: str) -> None:
    """Remove whatever this run made on the engine (its clients' projects, ours and the compose peer's)."""
    import docker

    api = docker.APIClient(base_url=host, version="auto", timeout=300)
    try:
        mine = lambda labels: (labels or {}).get("com.docker.compose.project", "").startswith(f"{tag}-")  # noqa: E731
        found = [c for c in api.containers(all=True, filters={"label": "com.docker.compose.project"})
                 if mine(c.get("Labels"))]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: api.remove_container(c["Id"], force=True, v=True), found))
        for net in api.networks(filters={"label": "com.docker.compose.project"}):
            if mine(net.get("Labels")):
                api.remove_network(net["Id"])
        for vol in (api.volumes(filters={"label": "com.docker.compose.project"}) or {}).get("Volumes") or []:
            if mine(vol.get("Labels")):
                api.remove_volume(vol["Name"])
    finally:
        api.close()


# -- statistics -----------------------------------------------------------------------------------------------------
def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def figure(key: str, ours: list[float], peer: list[float], calls: tuple[int, int], extra: dict | None = None,
           met_also: bool = True) -> dict[str, Any]:
    ratios = [o / p for o, p in zip(ours, peer, strict=True)]
    ratio = statistics.median(ratios)
    return {"ours": f"agencystack {LABELS[key]}", "peer": PEERS[key],
            "ours_ms": ms(statistics.median(ours)), "peer_ms": ms(statistics.median(peer)),
            "ratio": round(ratio, 3), "target": TARGETS[key], "met": ratio <= TARGETS[key] and met_also,
            "ours_calls": calls[0], "peer_calls": calls[1],
            "ours_samples_ms": [ms(x) for x in ours], "peer_samples_ms": [ms(x) for x in peer], **(extra or {})}


def floor_figures(floors: list[float], best: list[float], how: str) -> dict[str, Any]:
    """The floor beside a figure: its time, and the best ratio a command paying it could reach (``how``)."""
    return {"floor_ms": ms(statistics.median(floors)), "floor_ratio": round(statistics.median(best), 3),
            "floor": f'python -c "{FLOOR}"', "floor_bound": how}


def with_overhead(figure_: dict[str, Any], key: str, floors: list[float]) -> None:
    """Add ``overhead``, (ours - floor) / peer as the median over pairs (the floor measured in the same round), and
    its target where it has one; ``met`` then needs both."""
    ours = figure_["ours_samples_ms"]
    peer = figure_["peer_samples_ms"]
    overhead = statistics.median((o - ms(f)) / p for o, p, f in zip(ours, peer, floors, strict=True))
    figure_["overhead"] = round(overhead, 3)
    figure_["overhead_target"] = OVERHEAD_TARGETS.get(key)
    if key in OVERHEAD_TARGETS:
        figure_["met"] = figure_["met"] and overhead <= OVERHEAD_TARGETS[key]


def per_project(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``status --all`` process's cost per project: its slope from 10 to 50 projects (the fixed start-up cancels
    out)."""
    points = {p["projects"]: p["status_all_ms"] for p in curve}
    low, high = min(points), max(n for n in points if n <= STATUS_PROJECTS)
    slope = (points[high] - points[low]) / (high - low) if high > low else None
    return {"ours": f"agencystack status --all, ms per project ({low} -> {high} projects)", "ours_ms": slope and
            round(slope, 3), "peer": None, "ratio": None, "target": STATUS_PER_PROJECT_MS,
            "met": slope is not None and slope <= STATUS_PER_PROJECT_MS}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the run --------------------------------------------------------------------------------------------------------
def paired(bench: Bench, runs: int, figures: dict[str, Any]) -> None:
    """Fresh install, no-op re-install and uninstall --purge, ours and compose's, interleaved in pairs."""
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("fresh", "noop", "uninstall")}
    floors: list[float] = []
    peer_startups: list[float] = []
    for run in range(runs):
        ours, theirs = bench.client(f"o{run}"), bench.client(f"c{run}")
        directory = bench.render(theirs)
        project = f"{theirs}_{COMPONENT}"
        steps = {
            "fresh": (lambda: bench.cli("install", COMPONENT, "-c", ours),
                      lambda: bench.compose(project, "up", "-d", directory=directory)),
            "noop": (lambda: bench.cli("install", COMPONENT, "-c", ours),
                     lambda: bench.compose(project, "up", "-d", directory=directory)),
            "uninstall": (lambda: bench.cli("uninstall", COMPONENT, "-c", ours, "--purge", "--yes"),
                          lambda: bench.compose(project, "down", "-v", directory=directory)),
        }
        for key, (mine, peer) in steps.items():
            if run % 2 == 0:  # alternate who goes first: neither side always meets a warmer page cache
                samples[key][0].append(mine())
                samples[key][1].append(peer())
            else:
                samples[key][1].append(peer())
                samples[key][0].append(mine())
        floors.append(bench.floor())
        peer_startups.append(bench.compose_startup())
        print(f"  run {run + 1}/{runs}: " + ", ".join(f"{k} {ms(o[-1]):.0f}/{ms(p[-1]):.0f} ms"
                                                      for k, (o, p) in samples.items()) + f"  load {load()}",
              file=sys.stderr)
    # engine API calls, through the counting proxy (untimed)
    ours, theirs = bench.client("ocount"), bench.client("ccount")
    directory = bench.render(theirs)
    calls: dict[str, list[int]] = {}
    for key, args in (("fresh", ("install", COMPONENT, "-c", ours)), ("noop", ("install", COMPONENT, "-c", ours)),
                      ("uninstall", ("uninstall", COMPONENT, "-c", ours, "--purge", "--yes"))):
        bench.counter.take()
        bench.cli(*args, counted=True)
        calls[key] = [bench.counter.take()]
    for key, args in (("fresh", ("up", "-d")), ("noop", ("up", "-d")), ("uninstall", ("down", "-v"))):
        bench.counter.take()
        bench.compose(f"{theirs}_{COMPONENT}", *args, directory=directory, counted=True)
        calls[key].append(bench.counter.take())
    for key, (o, p) in samples.items():
        figures[key] = figure(key, o, p, (calls[key][0], calls[key][1]))
    peer = samples["noop"][1]
    figures["noop"].update(floor_figures(floors, [f / p for f, p in zip(floors, peer, strict=True)],
                                         "the floor alone"))
    with_overhead(figures["noop"], "noop", floors)
    with_overhead(figures["uninstall"], "uninstall", floors)
    # uninstall: the same engine work as the peer's (the same stops, in the same dependency order, each as long as
    # the engine takes), so the best a command paying the floor can reach is floor + the peer's engine work
    peer = samples["uninstall"][1]
    figures["uninstall"].update(floor_figures(floors, [(f + p - c) / p for f, p, c in
                                                       zip(floors, peer, peer_startups, strict=True)],
                                              "the floor, then the peer's engine work (its time less its start-up, "
                                              f"'docker-compose version': {ms(statistics.median(peer_startups))} ms)"))


def fleet_status(bench: Bench, warm: Warm, runs: int, figures: dict[str, Any], curves: dict[str, Any],
                 sizes: tuple[int, ...]) -> None:
    """Grow a fleet of small projects; at each size time ``status --all`` (and at 50 the compose peer) and a no-op
    re-install of one of them."""
    made = 0
    curve = curves.setdefault("projects", [])
    for size in sizes:
        while made < size:
            client = bench.client(f"f{made}")
            warm.run("install", COMPONENT, "-c", client, "--set", f"BENCHSTACK_SERVICES={FLEET_SERVICES}",
                     "--set", f"BENCHSTACK_PROBE_URL={bench.probes.url(client)}", "--json")
            made += 1
        first = bench.client("f0")
        status_s, noop_s = [], []
        for _ in range(runs):
            bench.probes.take()
            status_s.append(bench.cli("status", "--all"))
            probes = bench.probes.take()
            noop_s.append(bench.cli("install", COMPONENT, "-c", first))
        bench.counter.take()
        bench.cli("status", "--all", counted=True)
        status_calls = bench.counter.take()
        bench.cli("install", COMPONENT, "-c", first, counted=True)
        noop_calls = bench.counter.take()
        warm_status = statistics.median(warm.run("status", "--all", "--json") for _ in range(runs))
        point = {"projects": size, "status_all_ms": ms(statistics.median(status_s)), "status_all_calls": status_calls,
                 "status_probes_run": probes, "noop_ms": ms(statistics.median(noop_s)), "noop_calls": noop_calls,
                 "status_all_warm_ms": ms(warm_status), "load": load()}
        curve.append(point)
        print(f"  {size} projects: status --all {point['status_all_ms']} ms, {status_calls} calls, {probes} probes; "
              f"no-op {point['noop_ms']} ms, {noop_calls} calls  load {point['load']}", file=sys.stderr)
        if size == STATUS_PROJECTS:
            projects = [f"{bench.client(f'f{i}')}_{COMPONENT}" for i in range(size)]
            ours_s, peer_s, floors = [], [], []
            for run in range(runs):
                def peer() -> float:
                    return sum(bench.compose(p, "ps", "-a") for p in projects)

                def mine() -> float:
                    return bench.cli("status", "--all")

                first_, second = (mine, peer) if run % 2 == 0 else (peer, mine)
                a, b = first_(), second()
                ours_s.append(a if first_ is mine else b)
                peer_s.append(b if first_ is mine else a)
                floors.append(bench.floor())
            bench.counter.take()
            for p in projects:
                bench.compose(p, "ps", "-a", counted=True)
            peer_calls = bench.counter.take()
            figures["status_all"] = figure(
                "status_all", ours_s, peer_s, (status_calls, peer_calls),
                {"probes_run": probes, "probes_expected": size,
                 "note": "" if probes >= size else
                 f"status --all ran {probes} of the {size} status hooks' probes: the figure leaves them out, so the "
                 "target (probes included) is not met"},
                met_also=probes >= size)
            figures["status_all"].update(floor_figures(floors, [f / p for f, p in zip(floors, peer_s, strict=True)],
                                                       "the floor alone"))
            with_overhead(figures["status_all"], "status_all", floors)


def services_curve(bench: Bench, runs: int, curves: dict[str, Any], sizes: tuple[int, ...]) -> None:
    """One project of N services at a time: the no-op re-install and ``status --all``, ms and engine calls."""
    curve = curves.setdefault("services", [])
    for size in sizes:
        client = bench.client(f"s{size}")
        fresh = bench.cli("install", COMPONENT, "-c", client, "--set", f"BENCHSTACK_SERVICES={size}")
        noop_s = [bench.cli("install", COMPONENT, "-c", client) for _ in range(runs)]
        status_s = [bench.cli("status", "--all") for _ in range(runs)]
        bench.counter.take()
        bench.cli("install", COMPONENT, "-c", client, counted=True)
        noop_calls = bench.counter.take()
        bench.cli("status", "--all", counted=True)
        status_calls = bench.counter.take()
        point = {"services": size, "fresh_ms": ms(fresh), "noop_ms": ms(statistics.median(noop_s)),
                 "noop_calls": noop_calls, "status_all_ms": ms(statistics.median(status_s)),
                 "status_all_calls": status_calls, "load": load()}
        curve.append(point)
        print(f"  {size} services: no-op {point['noop_ms']} ms, {noop_calls} calls; status --all "
              f"{point['status_all_ms']} ms, {status_calls} calls  load {point['load']}", file=sys.stderr)
        bench.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes")


def warm_figures(bench: Bench, warm: Warm, runs: int) -> dict[str, Any]:
    """In a warm interpreter (no start-up, no imports): labelled, no target."""
    client = bench.client("warm")
    fresh = warm.run("install", COMPONENT, "-c", client, "--json")
    noop = statistics.median(warm.run("install", COMPONENT, "-c", client, "--json") for _ in range(runs))
    purge = warm.run("uninstall", COMPONENT, "-c", client, "--purge", "--yes", "--json")
    return {"fresh_ms": ms(fresh), "noop_ms": ms(noop), "uninstall_ms": ms(purge)}


def report(figures: dict[str, Any], curves: dict[str, Any], in_process: dict[str, Any], runs: int,
           started_load: list[float]) -> None:
    print(f"\n{'command':<32} {'ours ms':>9} {'peer ms':>9} {'ratio':>6} {'target':>7} {'met':>4} "
          f"{'calls':>6} {'peer calls':>10}  peer")
    for key in ("fresh", "noop", "uninstall", "status_all"):
        f = figures[key]
        print(f"{LABELS[key]:<32} {f['ours_ms']:>9} {f['peer_ms']:>9} {f['ratio']:>6} {'<=' + str(f['target']):>7} "
              f"{'yes' if f['met'] else 'NO':>4} {f['ours_calls']:>6} {f['peer_calls']:>10}  {f['peer']}")
        if f.get("note"):
            print(f"  ({f['note']})")
        if f.get("floor_ms"):
            print(f"  (the floor, {f['floor']}: {f['floor_ms']} ms; best ratio a command paying it can reach, "
                  f"{f['floor_bound']}: {f['floor_ratio']}; overhead (ours - floor) / peer: {f['overhead']}"
                  + (f", target <= {f['overhead_target']}" if f.get("overhead_target") is not None else "") + ")")
    f = figures["status_per_project"]
    print(f"{'status --all per project':<32} {f['ours_ms']!s:>9} ms (target <= {f['target']} ms) "
          f"{'yes' if f['met'] else 'NO'}")
    print("\nstatus --all and no-op re-install by number of projects (fleet of 2-service projects):")
    for p in curves["projects"]:
        print(f"  {p['projects']:>4} projects: status --all {p['status_all_ms']:>7} ms {p['status_all_calls']:>3} calls"
              f" ({p['status_probes_run']} probes); no-op {p['noop_ms']:>7} ms {p['noop_calls']:>3} calls")
    print("no-op re-install and status --all by number of services (one project):")
    for p in curves["services"]:
        print(f"  {p['services']:>4} services: no-op {p['noop_ms']:>7} ms {p['noop_calls']:>3} calls; "
              f"status --all {p['status_all_ms']:>7} ms {p['status_all_calls']:>3} calls")
    print(f"in a warm interpreter (no start-up; no target): fresh {in_process['fresh_ms']} ms, no-op "
          f"{in_process['noop_ms']} ms, uninstall --purge {in_process['uninstall_ms']} ms")
    ended_load = load()
    print(f"load average: {started_load} at the start, {ended_load} at the end ({os.cpu_count()} CPUs)")
    met = all(f["met"] for f in figures.values())
    print(json.dumps({"bench": "engine", "runs": runs, "all_targets_met": met, "figures": figures, "curves": curves,
                      "in_warm_interpreter_ms": in_process, "load_average": {"start": started_load, "end": ended_load},
                      "cpus": os.cpu_count()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, help="pairs per figure (default 5; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="3 pairs, curves to 50 projects and 20 services")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    project_sizes = tuple(s for s in PROJECT_SIZES if s <= 50) if args.quick else PROJECT_SIZES
    service_sizes = SERVICE_SIZES[:2] if args.quick else SERVICE_SIZES

    host = build.docker_host()
    if not host.startswith("unix://"):
        print(f"bench/engine.py needs a unix-socket engine (DOCKER_HOST={host})", file=sys.stderr)
        return 2
    build.ensure_images(only=["busybox"])
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    tag = f"e{secrets.token_hex(2)}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(work / "site"), str(FIXTURE)], check=True)
    compile_bytecode(work / "site")
    bench = Bench(work, host, tag)
    warm = Warm(bench)
    figures: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    started_load = load()
    try:
        bench.cli("components", "list")  # warms the entry-point cache, as any earlier command on a host has
        print(f"paired runs ({runs}), load {started_load}", file=sys.stderr)
        paired(bench, runs, figures)
        print("services curve", file=sys.stderr)
        services_curve(bench, runs, curves, service_sizes)
        print("projects curve", file=sys.stderr)
        fleet_status(bench, warm, runs, figures, curves, project_sizes)
        figures["status_per_project"] = per_project(curves["projects"])
        in_process = warm_figures(bench, warm, runs)
        report(figures, curves, in_process, runs, started_load)  # before the clean-up, which takes a while
    finally:
        warm.close()
        clean_engine(host, tag)
        bench.proxy.cut()
        bench.probes.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0  # a target not met is a figure, printed as such; only a failure to measure is an error


if __name__ == "__main__":
    sys.exit(main())
