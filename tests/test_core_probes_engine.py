"""HttpProbe on the real engine: the core's default install waits for a component's declared probes, its default
status shows them, and ``status --all`` goes through every component's status hooks (so probes run there too).

The fixture component ``probed`` (tests/fixtures/thirdparty) implements no lifecycle hook; its web server starts
listening a few seconds after its container starts and has no health check, so only the probe knows when it is up.
"""

from __future__ import annotations

import json
import secrets

import pytest

from agencystack.testing import free_port
from tests.engine.helpers import engine_host, http_get

pytestmark = pytest.mark.engine


@pytest.fixture
def probed(with_plugins, agencystack_run, images, docker_client, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", engine_host())
    client = f"t{secrets.token_hex(4)}"
    port = free_port()
    args = ["-c", client, "--set", f"PROBED_IMAGE={images['busybox']}", "--set", f"PROBED_PORT={port}"]
    yield {"client": client, "port": port, "args": args}
    agencystack_run("uninstall", "probed", "-c", client, "--purge", "--yes")
    for container in docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={client}"}):
        container.remove(force=True, v=True)


def test_default_install_waits_for_the_probe_and_status_shows_it(probed, agencystack_run):
    result = agencystack_run("install", "probed", *probed["args"], "--set", "PROBED_DELAY=4")
    assert result.exit_code == 0, result.output
    assert "waiting for http://127.0.0.1" in result.stderr
    status, _, body = http_get(f"http://127.0.0.1:{probed['port']}/index.html")  # install returned: it answers
    assert status == 200 and body.strip() == "ok"

    shown = json.loads(agencystack_run("status", "probed", "-c", probed["client"], "--json").stdout)[0]
    rows = {s["name"]: s for s in shown["services"]}
    assert rows["/index.html"]["state"] == "running"
    assert rows["/index.html"]["detail"] == f"200 http://127.0.0.1:{probed['port']}/index.html"

    everything = json.loads(agencystack_run("status", "--all", "--json").stdout)
    mine = next(s for s in everything if s["client"] == probed["client"] and s["component"] == "probed")
    assert [s["name"] for s in mine["services"]] == ["web", "/index.html"]  # through the status hooks


def test_a_probe_that_does_not_answer_fails_install_and_status(probed, agencystack_run):
    args = [*probed["args"], "--set", "PROBED_DELAY=0", "--set", "PROBED_PATH=/missing", "--set", "PROBED_WAIT=3"]
    result = agencystack_run("install", "probed", *args)
    assert result.exit_code == 1, result.output
    error = result.stderr.splitlines()[-1]
    assert error == (f"error: probed for {probed['client']} did not answer http://127.0.0.1:{probed['port']}/missing "
                     f"within 3s (last: 404; expected 200); see 'agencystack logs probed -c {probed['client']}'")
    status = agencystack_run("status", "probed", "-c", probed["client"], "--json")
    assert status.exit_code == 1
    shown = json.loads(status.stdout)[0]
    assert shown["state"] == "failed"
    assert {s["name"]: s["state"] for s in shown["services"]} == {"web": "running", "/missing": "failed"}
