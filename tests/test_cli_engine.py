"""The whole lifecycle through the CLI on the real engine, with docker compose v2 as the oracle.

The fixture component ``whoami`` (tests/fixtures/thirdparty) implements no lifecycle hook: everything here is the
core's default behaviour on a real Docker engine.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

from agencystack.testing import free_port
from tests.engine.helpers import engine_env, http_get, wait_until

pytestmark = pytest.mark.engine


@pytest.fixture
def whoami(with_plugins, agencystack_run, images, docker_client, engine):
    """Install arguments for a unique client of the whoami fixture; everything is removed afterwards."""
    client = f"t{secrets.token_hex(4)}"
    port = free_port()
    args = ["--client-id", client, "--set", f"WHOAMI_IMAGE={images['busybox']}", "--set", f"WHOAMI_PORT={port}"]
    yield {"client": client, "port": port, "args": args, "project": f"{client}_whoami"}
    agencystack_run("uninstall", "whoami", "--client-id", client, "--purge", "--yes")
    for container in docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={client}"}):
        container.remove(force=True, v=True)


def containers(docker_client, project):
    return {c.labels["com.docker.compose.service"]: c for c in
            docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}


def test_install_status_logs_restart_uninstall(whoami, agencystack_run, agencystack_env, docker_client, compose_bin):
    client, project = whoami["client"], whoami["project"]
    first = agencystack_run("install", "whoami", *whoami["args"])
    assert first.exit_code == 0, first.output
    assert "web" in first.stderr and "healthy" in first.stderr  # progress while creating and waiting
    status, _, body = http_get(f"http://127.0.0.1:{whoami['port']}/")
    assert status == 200 and "service=web" in body

    # the operator's own tool recognises the deployment
    ps = subprocess.run([str(compose_bin), "-p", project, "ps", "--all", "--format", "json"], env=engine_env(),
                        capture_output=True, text=True, check=True)
    listed = {json.loads(line)["Service"] for line in ps.stdout.splitlines() if line.strip()}
    assert {"web", "worker", "init"} <= listed

    # re-running with nothing changed changes nothing
    before = {name: c.id for name, c in containers(docker_client, project).items()}
    again = agencystack_run("install", "whoami", "--client-id", client)
    assert again.exit_code == 0 and "no changes" in again.stdout
    assert {name: c.id for name, c in containers(docker_client, project).items()} == before

    result = agencystack_run("status", "whoami", "--client-id", client, "--json")
    assert result.exit_code == 0, result.output
    status_json = json.loads(result.stdout)[0]
    assert status_json["state"] == "running"
    assert {s["name"]: s["state"] for s in status_json["services"]} == {
        "init": "completed", "web": "running", "worker": "running"}  # init is a job: done

    wait_until(lambda: "tick hello" in agencystack_run("logs", "whoami", "-c", client, "--tail", "5").stdout,
               20, message="worker log lines")
    lines = agencystack_run("logs", "whoami", "-c", client, "--service", "worker", "--tail", "3").stdout
    assert lines.splitlines() and all(line.startswith("worker | tick hello") for line in lines.splitlines())
    nope = agencystack_run("logs", "whoami", "-c", client, "--service", "nope")
    assert nope.exit_code == 2 and "unknown service(s) nope" in nope.stderr and "known: init, web, worker" in nope.stderr

    started = containers(docker_client, project)["web"].attrs["State"]["StartedAt"]
    restarted = agencystack_run("restart", "whoami", "-c", client, "--service", "web")
    assert restarted.exit_code == 0, restarted.output
    assert containers(docker_client, project)["web"].attrs["State"]["StartedAt"] != started

    everything = json.loads(agencystack_run("status", "--all", "--json").stdout)
    assert any(s["client"] == client and s["component"] == "whoami" and s["state"] == "running" for s in everything)

    removed = agencystack_run("uninstall", "whoami", "-c", client)
    assert removed.exit_code == 0 and "kept" in removed.stdout
    assert not containers(docker_client, project)
    assert docker_client.volumes.list(filters={"name": f"{project}_data"})
    assert (agencystack_env / "clients" / client / "whoami" / ".env").exists()
    again = agencystack_run("uninstall", "whoami", "-c", client)  # nothing left to remove: says so
    assert again.exit_code == 0 and "not installed" in again.stdout and "removed" not in again.stdout
    purged = agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")
    assert purged.exit_code == 0, purged.output
    assert not docker_client.volumes.list(filters={"name": f"{project}_data"})
    assert not (agencystack_env / "clients" / client / "whoami").exists()
    never = agencystack_run("uninstall", "whoami", "-c", client)
    assert never.exit_code == 0 and "not installed" in never.stdout and "removed" not in never.stdout


def test_rendered_compose_file_references_secrets_and_is_valid(whoami, agencystack_run, agencystack_env, compose_bin,
                                                              docker_client):
    assert agencystack_run("install", "whoami", *whoami["args"]).exit_code == 0
    directory = agencystack_env / "clients" / whoami["client"] / "whoami"
    key = [line.split("=", 1)[1] for line in (directory / ".env").read_text().splitlines()
           if line.startswith("WHOAMI_API_KEY=")][0]
    rendered = (directory / "compose.yaml").read_text()
    assert "${WHOAMI_API_KEY}" in rendered and key not in rendered
    for container in docker_client.containers.list(all=True, filters={"label": f"io.agencystack.client={whoami['client']}"}):
        visible = json.dumps([container.attrs["Args"], container.attrs["Config"]["Cmd"], container.labels,
                              container.attrs["Config"]["Entrypoint"]])
        assert key not in visible  # secrets reach the environment only, never arguments or labels
    config = subprocess.run([str(compose_bin), "-f", str(directory / "compose.yaml"), "config", "--quiet"],
                            env=engine_env(), capture_output=True, text=True, cwd=directory)
    assert config.returncode == 0, config.stderr


def test_plan_shows_changes_without_making_them(whoami, agencystack_run, docker_client):
    fresh = json.loads(agencystack_run("plan", "whoami", *whoami["args"], "--json").stdout)
    assert {c["service"]: c["kind"] for c in fresh["changes"]} == {"init": "create", "web": "create",
                                                                  "worker": "create"}
    assert "WHOAMI_API_KEY" in fresh["generate"]
    assert not containers(docker_client, whoami["project"])  # plan touched nothing
    assert agencystack_run("install", "whoami", *whoami["args"]).exit_code == 0
    changed = json.loads(agencystack_run("plan", "whoami", "-c", whoami["client"], "--set", "WHOAMI_MESSAGE=bye",
                                         "--json").stdout)
    kinds = {c["service"]: c["kind"] for c in changed["changes"]}
    assert kinds == {"init": "unchanged", "web": "recreate", "worker": "recreate"}


def test_logs_follow_streams_as_lines_arrive(whoami, agencystack_run, agencystack_env):
    assert agencystack_run("install", "whoami", *whoami["args"]).exit_code == 0
    proc = subprocess.Popen(["agencystack", "logs", "whoami", "-c", whoami["client"], "--service", "worker",
                             "--tail", "1", "-f"], stdout=subprocess.PIPE, text=True, env=engine_env())
    try:
        started = time.monotonic()
        lines = [proc.stdout.readline() for _ in range(3)]
        assert all(line.startswith("worker | tick") for line in lines)
        assert time.monotonic() - started >= 1.0  # new lines arrived while following, not a buffered dump
    finally:
        proc.kill()
        proc.wait()


def test_doctor_reports_the_engine_and_host(agencystack_run, engine, docker_client):
    result = agencystack_run("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["engine"]["result"] == "ok" and "API" in checks["engine"]["detail"]
    assert {"memory", "cpus", "disk", "port 80", "port 443"} <= set(checks)


def test_purge_keeps_backup_archives(whoami, agencystack_run, agencystack_env, docker_client):
    assert agencystack_run("install", "whoami", *whoami["args"]).exit_code == 0
    backups = agencystack_env / "clients" / whoami["client"] / "whoami" / "backups"
    backups.mkdir(mode=0o700)
    (backups / "whoami_old.agsb").write_bytes(b"archive")
    purged = agencystack_run("uninstall", "whoami", "-c", whoami["client"], "--purge", "--yes")
    assert purged.exit_code == 0 and "backups kept" in purged.stdout
    assert (backups / "whoami_old.agsb").read_bytes() == b"archive"
    assert not (backups.parent / ".env").exists() and not (backups.parent / "manifest.json").exists()
    everything = json.loads(agencystack_run("status", "--all", "--json").stdout)
    assert not any(s["client"] == whoami["client"] for s in everything)  # purged means not installed


def test_missing_image_names_the_setting_that_overrides_it(whoami, agencystack_run):
    result = agencystack_run("install", "whoami", "--client-id", whoami["client"], "--set",
                             "WHOAMI_IMAGE=agencystack-test/nope:1", "--set", f"WHOAMI_PORT={whoami['port']}")
    assert result.exit_code == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "agencystack-test/nope:1" in error[0] and "set WHOAMI_IMAGE" in error[0]
