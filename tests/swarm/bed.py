"""The three-node Swarm test bed (tests/swarm/testbed.sh) for pytest: up for a module, down after it.

Needs root, dockerd, iproute2 and util-linux (nsenter, unshare): without them the tests skip with the reason,
except under CI=true, where they fail (as the engine fixtures do).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import engine_host, in_ci

TESTBED = Path(__file__).with_name("testbed.sh")
NODES = ("swarm1", "swarm2", "swarm3")


@dataclass
class Bed:
    manager: str  # the engine address of node 1 (a manager, as are the others)
    nodes: dict[str, str]  # hostname -> that node's engine address

    def client(self, node: str = "swarm1") -> Any:
        import docker

        return docker.DockerClient(base_url=self.nodes[node])

    def run(self, *args: str) -> str:
        done = subprocess.run(["bash", str(TESTBED), *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "DOCKER_HOST": engine_host()})
        if done.returncode != 0:
            pytest.fail(f"testbed.sh {' '.join(args)} failed: {done.stderr[-2000:]}", pytrace=False)
        return done.stdout


def missing() -> str | None:
    if os.geteuid() != 0:
        return "the swarm test bed needs root (network namespaces, dockerd)"
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare"):
        if not shutil.which(tool):
            return f"the swarm test bed needs {tool}"
    return None


def bring_up() -> Bed:
    reason = missing()
    if reason:
        if in_ci():
            pytest.fail(f"CI=true and the swarm tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    bed = Bed("", {})
    exports = dict(line.removeprefix("export ").split("=", 1) for line in bed.run("up").splitlines()
                   if line.startswith("export "))
    bed.manager = exports["AGENCYSTACK_SWARM_MANAGER"]
    bed.nodes = {f"swarm{n}": exports[f"AGENCYSTACK_SWARM_NODE{n}"] for n in (1, 2, 3)}
    return bed
