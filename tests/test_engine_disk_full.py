"""Disk full, for real: a second engine whose data root is a small tmpfs, filled up before an install.

The install fails with one line naming the service and the cause; after space is freed, re-running converges to
the same state as an uninterrupted install (one container per service, all running).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.engine.helpers import private_engine

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, docker_client):
    """A dockerd on a 64 MB tmpfs with only the busybox image; stopped and unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs for the engine's data root")
    base = tmp_path_factory.mktemp("small-engine")
    data = base / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)], check=True)
    try:
        with private_engine("small", base, base / "dockerd.log", "192.168.240.0/20") as engine:
            yield {"host": engine.host, "data": data, "client": engine.client}
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_disk_full_fails_in_one_line_and_a_rerun_converges(small_engine, with_plugins, agencystack_run, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", small_engine["host"])
    data = small_engine["data"]
    stats = os.statvfs(data)
    ballast = data / "ballast"
    ballast.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 2 * 1024 * 1024))  # leave 2 MB
    failed = agencystack_run("install", "whoami", "-c", "full", "--set", "WHOAMI_IMAGE=agencystack-test/busybox:1",
                             "--set", "WHOAMI_PORT=18997")
    assert failed.exit_code == 1
    error = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "no space left on device" in error[0] and "disk is full" in error[0]
    ballast.unlink()
    again = agencystack_run("install", "whoami", "-c", "full")
    assert again.exit_code == 0, again.output
    containers = small_engine["client"].api.containers(all=True, filters={"label": "io.agencystack.client=full"})
    services = sorted(c["Labels"]["com.docker.compose.service"] for c in containers)
    assert services == ["init", "web", "worker"]
    assert agencystack_run("status", "whoami", "-c", "full").exit_code == 0
    assert agencystack_run("uninstall", "whoami", "-c", "full", "--purge", "--yes").exit_code == 0


