"""Disk full, for real: a second engine whose data root is a small tmpfs, filled up before an install.

The install fails with one line naming the service and the cause; after space is freed, re-running converges to
the same state as an uninterrupted install (one container per service, all running).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, docker_client):
    """A dockerd on a 64 MB tmpfs with only the busybox image; stopped and unmounted afterwards."""
    import docker

    from tests.images import build

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs for the engine's data root")
    base = tmp_path_factory.mktemp("small-engine")
    data = base / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)], check=True)
    run_root = Path(f"/run/agencystack-test-small-{os.getpid()}")
    host = f"unix://{run_root}/docker.sock"
    env = {**os.environ, "DOCKER_HOST": host, "AGENCYSTACK_TEST_DATA_ROOT": str(base),
           "AGENCYSTACK_TEST_RUN_ROOT": str(run_root), "AGENCYSTACK_TEST_DOCKERD_LOG": str(base / "dockerd.log"),
           # its own address pool, far from the main engine's, so the two never hand out the same subnet
           "AGENCYSTACK_TEST_DOCKERD_ARGS": "--default-address-pool base=192.168.240.0/20,size=24"}
    try:
        subprocess.run(["bash", str(REPO / "tests/engine/start-engine.sh")], env=env, check=True,
                       capture_output=True)
        client = docker.DockerClient(base_url=host)
        recipe, binary = build._busybox_recipe()
        build._build_busybox(client, recipe, binary)
        yield {"host": host, "data": data, "client": client}
    finally:
        pid_file = run_root / "pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                subprocess.run(["sleep", "0.1"])
        subprocess.run(["umount", "-l", str(data)], check=False)
        shutil.rmtree(run_root, ignore_errors=True)


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


