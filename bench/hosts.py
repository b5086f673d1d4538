"""``status --all`` over a fleet: 3 hosts x 20 projects against 1 host x 20 projects (target: ratio <= 1.3).

The fleet is real: the engine at $DOCKER_HOST (default the test engine) is the local host, and two more dockerds
are started here (tests/engine/start-engine.sh, run roots and data roots of their own under a temporary
directory, their own address pools) and registered with ``agencystack hosts add``; both are stopped at the end,
whatever happens. One state root holds 20 clients of ``benchstack`` (bench/fixture, 2 busybox services each) on
each host (``install --host``). Timed, as processes typed as an operator types them (human output):

- ``agencystack status --all --host local``: one host, its 20 projects;
- ``agencystack status --all``: the three hosts, 60 projects, asked in parallel (one snapshot per host).

Pairs alternate their order; the ratio is the median of the pairs' ratios (load on a shared machine hits both
sides alike). All three engines share this machine's cores, so the fleet's per-project work (each component's
status hook) is not spread over machines as it would be in a real fleet: the figure is an upper bound.

Prints a table, then ONE JSON line: both figures, the ratio, the target and whether it is met.

Usage: python bench/hosts.py [--runs N] [--projects N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from engine import COMPONENT, FIXTURE, Warm, clean_engine, compile_bytecode, load  # noqa: E402

from tests.images import build  # noqa: E402

TARGET = 1.3
POOLS = ("10.238.0.0/16", "10.239.0.0/16")


class Engine:
    """A dockerd of this bench's own (start-engine.sh), stopped by :meth:`stop`."""

    def __init__(self, work: Path, name: str, pool: str):
        self.run_root = Path(f"/run/agencystack-bench-{name}-{os.getpid()}")
        self.host = f"unix://{self.run_root}/docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": self.host, "AGENCYSTACK_TEST_RUN_ROOT": str(self.run_root),
                    "AGENCYSTACK_TEST_DATA_ROOT": str(work / name),
                    "AGENCYSTACK_TEST_DOCKERD_LOG": str(work / f"{name}.log"),
                    "AGENCYSTACK_TEST_DOCKERD_ARGS": f"--default-address-pool base={pool},size=24"}

    def start(self) -> None:
        subprocess.run(["bash", str(REPO / "tests" / "engine" / "start-engine.sh")], env=self.env, check=True,
                       capture_output=True)
        import docker

        build.ensure_images(docker.DockerClient(base_url=self.host), only=["busybox"])

    def stop(self) -> None:
        subprocess.run(["bash", str(REPO / "tests" / "engine" / "stop-engine.sh")], env=self.env, check=False,
                       capture_output=True)
        shutil.rmtree(self.run_root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--projects", type=int, default=20, help="projects per host")
    args = parser.parse_args(argv)
    local = os.environ.get("DOCKER_HOST") or build.docker_host()
    build.ensure_images(only=["busybox"])
    tag = f"bh{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="agencystack-bench-hosts-"))
    engines = [Engine(work, f"h{i + 2}", pool) for i, pool in enumerate(POOLS)]
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(FIXTURE)], check=True, capture_output=True)
    env = dict(os.environ, AGENCYSTACK_ROOT=str(work / "root"), AGENCYSTACK_LOG_DIR=str(work / "log"),
               DOCKER_HOST=local, XDG_CACHE_HOME=str(work / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    env.pop("AGENCYSTACK_PLUGINS", None)
    script = str(Path(sys.executable).parent / "agencystack")
    warm = None
    try:
        for engine in engines:
            engine.start()
        compile_bytecode(site)

        class Shim:  # what Warm needs of bench/engine.py's Bench
            pass

        shim = Shim()
        shim.env = env
        warm = Warm(shim)
        hosts = ["local"]
        for engine, name in zip(engines, ("h2", "h3")):
            warm.run("hosts", "add", name, "--docker-host", engine.host, "--json")
            hosts.append(name)
        started = time.monotonic()
        for host in hosts:
            for i in range(args.projects):
                warm.run("install", COMPONENT, "-c", f"{tag}-{host}-{i}", "--host", host, "--set",
                         "BENCHSTACK_SERVICES=2", "--json")
        print(f"fleet: {len(hosts)} hosts x {args.projects} projects installed in {time.monotonic() - started:.0f} s",
              file=sys.stderr)

        def timed(*command: str) -> float:
            begin = time.perf_counter()
            done = subprocess.run([script, *command], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            elapsed = time.perf_counter() - begin
            if done.returncode != 0:
                raise RuntimeError(f"agencystack {' '.join(command)} exited {done.returncode}: {done.stderr[-800:]}")
            return elapsed

        timed("status", "--all")  # warm the page cache and the plugin discovery cache
        one, fleet, ratios = [], [], []
        for run in range(args.runs):
            if run % 2:
                f = timed("status", "--all")
                o = timed("status", "--all", "--host", "local")
            else:
                o = timed("status", "--all", "--host", "local")
                f = timed("status", "--all")
            one.append(o)
            fleet.append(f)
            ratios.append(f / o)
        ratio = statistics.median(ratios)
        one_ms, fleet_ms = round(statistics.median(one) * 1000, 1), round(statistics.median(fleet) * 1000, 1)
        print(f"{'figure':<44}{'ms':>10}")
        print(f"{f'status --all --host local (1 x {args.projects})':<44}{one_ms:>10}")
        print(f"{f'status --all ({len(hosts)} x {args.projects}, in parallel)':<44}{fleet_ms:>10}")
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"{'ratio (median of pairs)':<44}{ratio:>10.2f}   target <= {TARGET}: {verdict}")
        print(f"load average: {load()}")
        print(json.dumps({"bench": "hosts", "hosts": len(hosts), "projects_per_host": args.projects,
                          "one_host_ms": one_ms, "fleet_ms": fleet_ms, "ratio": round(ratio, 3), "target": TARGET,
                          "met": ratio <= TARGET, "runs": args.runs, "load": load()}))
        return 0
    finally:
        if warm is not None:
            warm.close()
        clean_engine(local, tag)
        for engine in engines:
            engine.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
