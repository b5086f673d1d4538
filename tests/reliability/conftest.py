"""Fixtures of the reliability suite (see bed.py) and the figures printed at the end of the run."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers import process_env
from tests.reliability.bed import COMPONENT, FIGURES, Bed


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures (successes/trials)")
        for name, n, ok, note in FIGURES:
            terminalreporter.write_line(f"{name:<60} {ok}/{n}" + (f"  {note}" if note else ""))


@pytest.fixture(scope="session")
def bed(plugin_site, docker_client, images, engine_run_id, tmp_path_factory):
    work = tmp_path_factory.mktemp("reliability")
    prefix = "r" + hashlib.sha256(engine_run_id.encode()).hexdigest()[:5]
    network = f"agencystack_{prefix}-edge"  # the edge network the routed web joins (no Traefik needed for it)
    created = docker_client.networks.create(network, driver="bridge", labels={"org.agencystack.test.run": engine_run_id})
    env = process_env(work / "root", pythonpath=[plugin_site], AGENCYSTACK_PLUGINS=COMPONENT, EDGE_NETWORK=network,
                      AGENCYSTACK_LOCK_TIMEOUT="600")
    state = Bed(work=work, env=env, prefix=prefix, docker=docker_client)
    try:
        yield state
    finally:
        for client in sorted(state.clients):
            state.purge(client)
        for container in docker_client.containers.list(all=True, filters={"label": f"io.agencystack.component={COMPONENT}"}):
            if container.labels.get("io.agencystack.client", "").startswith(prefix):
                container.remove(force=True, v=True)
        for volume in docker_client.volumes.list(filters={"label": f"io.agencystack.component={COMPONENT}"}):
            if (volume.attrs.get("Labels") or {}).get("io.agencystack.client", "").startswith(prefix):
                volume.remove(force=True)
        created.remove()
