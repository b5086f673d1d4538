#!/usr/bin/env python3
"""Reproducer: how may containers of one network be taken down on this engine? (Not part of ``make bench``.)

The driver's uninstall (DockerDriver.remove) once stopped containers one at a time, after an engine wedged in a CI
run while a dependency level was stopped in parallel. docker compose's ``down`` stops containers in parallel (each
once what depends on it has stopped) on the same engine. This script runs rounds of "N containers on two networks,
started; then taken down" and reports, per way of taking them down:

- hangs: any engine call that does not return within --hang seconds (the wedge: calls on those containers hang);
- networks left behind: the network cannot be removed although nothing is attached ("has active endpoints"):
  Docker 20.10's endpoint count went stale (fixed only by an engine restart);
- seconds per round.

Ways (``--ways``, rotated round by round so that load hits each alike):

- ``serial``         stop one at a time, then remove one at a time (the driver before this change);
- ``pstop-sremove``  stop all in parallel, then remove one at a time;
- ``pipeline``       stop all in parallel; one thread removes each container, one at a time, as soon as its stop
                     returns (removals overlap the stops, never each other: what the driver does);
- ``compose``        stop and remove each container in its own thread (what compose's down does);
- ``pstop-premove``  stop all in parallel, then remove all in parallel;
- ``premove``        force-remove all in parallel, no stop first (what ``uninstall --purge`` does: the data goes);
- ``mixed``          stop all in parallel while as many new containers start on the same networks (join vs leave:
                     the known Docker 20.10 deadlock of libnetwork's getSvcRecords and processEndpointDelete, fixed
                     in 20.10.27), then remove serially.

Figures on this machine (Debian 12 docker.io 20.10.24+dfsg1, vfs, 2 shared cores at load 30-130), 2026-11-27,
busybox containers with init; the first five rows from this procedure as its first drafts ran it, the last two
from this script (``--rounds 50 --containers 20 --ways pipeline,pstop-sremove``):

    way             rounds x containers          hangs  networks left behind  seconds/round
    serial          25 x 20 (2 networks)           0            0                 7.5
    pstop-sremove   25 x 20 (2 networks)           0            0                 4.2
    compose         25 x 20 (2 networks)           0            1                 3.2
    pstop-premove   25 x 20 (2 networks)           0            1                 3.6
    pstop-premove   20 x 10, 31 x 20 (1 network)   0            1                 1-2.5
    mixed           20 x 10, 39 x 12 (1 network,
                    removals in parallel)          0            1                 5-10
    pipeline        25 x 20 (2 networks)           0            0                 2.6
    pstop-sremove   25 x 20 (2 networks)           0            1                 3.4

2026-12-07, the same engine at load ~10 (``--rounds 30 --containers 20 --ways premove,pipeline``): ``premove``
15 rounds, 0 hangs, 0 networks left behind, 2.54 s/round; ``pipeline`` 15 rounds, 0, 0, 2.07 s/round (busybox with
init stops at once: the saving of ``premove`` is the graceful stops and the dependency levels of a real stack).

No way hung in 310 rounds: the serialisation of stops was dropped (the driver stops containers in parallel, each
once what depends on it has stopped, as compose does). Parallel stops can leave a stale endpoint count whatever
the removals do (1 of 50 with serial removal after them), parallel removal more often (4 of 160; 4 of 34
uninstalls of a 37-service stack measured before); the driver removes each container as soon as it has stopped,
one at a time (``pipeline``: 0 of 25, and the fastest), and reports a network the engine keeps as left behind.

Usage: python bench/exits.py [--rounds 40] [--containers 20] [--ways serial,pstop-sremove,compose] [--hang 120]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.images import build  # noqa: E402

WAYS = ("serial", "pstop-sremove", "pipeline", "compose", "pstop-premove", "premove", "mixed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--hang", type=float, default=120, help="seconds after which an engine call counts as hung")
    args = parser.parse_args()
    ways = args.ways.split(",")
    import docker

    image = build.ensure_images(only=["busybox"])["busybox"]
    api = docker.APIClient(base_url=build.docker_host(), version="auto", timeout=args.hang, max_pool_size=64)
    tag = f"exits{secrets.token_hex(2)}"

    def make(nets: list[str], i: int, start: bool = True) -> str:
        first = nets[i % 2]
        created = api.create_container(
            image, ["sh", "-c", "exec sleep 3600"], name=f"{tag}-{first}-{i}", stop_timeout=2, labels={tag: "1"},
            host_config=api.create_host_config(init=True, network_mode=first),
            networking_config=api.create_networking_config({first: api.create_endpoint_config(aliases=[f"s{i}"])}))
        if i % 4 == 0:
            api.connect_container_to_network(created["Id"], nets[(i + 1) % 2])
        if start:
            api.start(created["Id"])
        return created["Id"]

    def par(fn, items, n: int = 32) -> list:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(fn, items))

    def stop(c: str) -> None:
        api.stop(c, timeout=2)

    def rm(c: str) -> None:
        api.remove_container(c, force=True)

    def down(way: str, ids: list[str], nets: list[str]) -> list[str]:
        if way == "serial":
            for c in ids:
                stop(c)
            for c in ids:
                rm(c)
        elif way == "pstop-sremove":
            par(stop, ids)
            for c in ids:
                rm(c)
        elif way == "pipeline":
            with ThreadPoolExecutor(1) as remover, ThreadPoolExecutor(32) as stoppers:
                stopping = {stoppers.submit(stop, c): c for c in ids}
                removed = []
                for f in as_completed(stopping):
                    f.result()
                    removed.append(remover.submit(rm, stopping[f]))
                for f in removed:
                    f.result()
        elif way == "compose":
            par(lambda c: (stop(c), rm(c)), ids)
        elif way == "pstop-premove":
            par(stop, ids)
            par(rm, ids)
        elif way == "premove":
            par(rm, ids)
        else:  # mixed: leaves while others join
            with ThreadPoolExecutor(64) as pool:
                joined = [pool.submit(make, nets, len(ids) + i) for i in range(len(ids))]
                list(pool.map(stop, ids))
                ids = ids + [f.result() for f in joined]
            for c in ids:
                rm(c)
        return ids

    stats = {w: {"rounds": 0, "hangs": 0, "networks_left": 0, "seconds": 0.0} for w in ways}
    try:
        for n in range(args.rounds):
            way = ways[n % len(ways)]
            nets = [f"{tag}a{n}", f"{tag}b{n}"]
            for net in nets:
                api.create_network(net, driver="bridge", labels={tag: "1"})
            ids = par(lambda i: make(nets, i), range(args.containers), 8)
            started = time.monotonic()
            try:
                down(way, ids, nets)
            except docker.errors.DockerException as exc:  # a timeout here: the engine did not answer
                if "timed out" not in str(exc).lower() and "timeout" not in type(exc).__name__.lower():
                    raise
                stats[way]["hangs"] += 1
                print(f"round {n + 1} {way}: HUNG ({exc})", flush=True)
                break
            took = time.monotonic() - started
            left = 0
            for net in nets:
                try:
                    api.remove_network(net)
                except docker.errors.APIError as exc:
                    if "active endpoints" not in str(exc):
                        raise
                    left += 1
            s = stats[way]
            s["rounds"] += 1
            s["networks_left"] += left
            s["seconds"] += took
            print(f"round {n + 1}/{args.rounds} {way}: {took:.2f}s, networks left behind {left}", flush=True)
    finally:
        for c in api.containers(all=True, filters={"label": tag}):
            api.remove_container(c["Id"], force=True)
    for way, s in stats.items():
        s["seconds_per_round"] = round(s.pop("seconds") / s["rounds"], 2) if s["rounds"] else None
    print(json.dumps({"bench": "exits", "containers": args.containers, "ways": stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
