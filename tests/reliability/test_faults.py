"""Faults in the middle of an install, on the real engine: the CLI SIGKILLed at a random point (then the same
install run again must converge, with the password the database was initialised with), and the engine itself
stopped mid-install (a second dockerd of this test's own: one error line, then a re-run after the engine is back
converges). Trials are bounded for CI; AGENCYSTACK_RELIABILITY_TRIALS runs more."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.engine.helpers import private_engine
from tests.reliability.bed import COMPONENT, record, trials

pytestmark = [pytest.mark.engine, pytest.mark.reliability]


def test_sigkill_at_a_random_point_then_rerun_converges(bed):
    seed = int(os.environ.get("AGENCYSTACK_RELIABILITY_SEED", time.time()))
    rng = random.Random(seed)
    n = trials(2)
    client = bed.client("kill")
    ok, failures, points = 0, [], []
    for i in range(n):
        if i % 2 == 0:
            bed.purge(client)  # every other trial kills a first install, the others a converging re-install
        process = bed.start("install", COMPONENT, "-c", client)
        point = round(rng.uniform(0.3, 12.0), 1)
        points.append(point)
        time.sleep(point)
        process.send_signal(signal.SIGKILL)
        bed.finish(process)
        before = bed.saved(client).get("NOTES_DB_PASSWORD")
        rerun = bed.cli("install", COMPONENT, "-c", client, expect=None)
        healthy, detail = bed.healthy(client)
        kept = before is None or bed.saved(client).get("NOTES_DB_PASSWORD") == before
        if rerun.returncode == 0 and healthy and kept:
            ok += 1
        else:
            failures.append((point, rerun.returncode, rerun.stderr[-400:], detail))
    bed.purge(client)
    record("SIGKILL mid-install, then re-run converges", n, ok, f"(seed {seed}; kill after {points} s)")
    assert ok == n, failures


@pytest.fixture
def spare_engine(tmp_path, images):
    """A dockerd of this test's own (the busybox image only), which the test may stop and start again."""
    with private_engine("spare", tmp_path / "engine", tmp_path / "dockerd.log", "192.168.224.0/20") as engine:
        yield {"host": engine.host, "start": engine.start, "stop": engine.stop, "client": engine.client}


def test_engine_stopped_mid_install_then_rerun_converges(bed, spare_engine):
    env = dict(bed.env, DOCKER_HOST=spare_engine["host"], AGENCYSTACK_ROOT=str(bed.work / "spare-root"),
               AGENCYSTACK_PLUGINS="whoami")
    client = bed.client("engine-stop")
    args = ("install", "whoami", "-c", client, "--set", "WHOAMI_IMAGE=agencystack-test/busybox:1",
            "--set", "WHOAMI_PORT=18996")
    process = bed.start(*args, env=env)
    time.sleep(1.5)
    spare_engine["stop"]()
    code, out = bed.finish(process)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    one_line = code in (1, 3) and len(errors) == 1 and "Traceback" not in out
    spare_engine["start"]()
    rerun = bed.cli(*args, env=env, expect=None)  # the same command again, as the operator's script would
    containers = spare_engine["client"].api.containers(filters={"label": f"io.agencystack.client={client}"})
    services = sorted(c["Labels"]["com.docker.compose.service"] for c in containers)
    converged = rerun.returncode == 0 and services == ["web", "worker"]  # the init job ran and exited
    record("engine stopped mid-install: one error line, re-run converges", 1, int(one_line and converged),
           f"(exit {code}, then {rerun.returncode})")
    assert one_line, out
    assert converged, (rerun.stdout, rerun.stderr, services)
    bed.cli("uninstall", "whoami", "-c", client, "--purge", "--yes", env=env, expect=None)
