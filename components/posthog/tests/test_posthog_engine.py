"""PostHog on the real engine, through the real install path, behind real Traefik.

No registry is reachable here, so PostHog's own images cannot run: a test-only plugin (:class:`EchoImages`,
registered like any plugin, answering ``modify_stack``) swaps every image but Postgres for the echo busybox
backend, which answers every request with its name. Everything else is the product's: settings and secrets,
upstream files (from a local directory, as on an offline host), the stack, the edge's labels, the engine driver,
the install hook with its health wait through the edge, status, backup and restore, uninstall.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agencystack import run
from agencystack.testing import container_name, project_filter, run_backup, run_restore
from components.posthog.tests.helpers import ROUTED, SERVICES, TO_WEB, acme, domain, host  # noqa: F401 - fixtures
from tests.engine.helpers import engine_env, wait_until
from tests.helpers import request, served_by

pytestmark = pytest.mark.engine



def test_install_reports_the_url_after_health_through_the_edge(host, acme, docker_client):
    client, outcome = acme
    assert outcome.url == f"http://{domain(client)}:{host.edge.http_port}"
    assert "healthy at" in outcome.summary
    running = host.containers(docker_client, client)
    assert set(running) == SERVICES
    ctx = host.context(client, "status")
    assert (ctx.dir.path / "compose.yaml").is_file() and oct(ctx.dir.env_file.stat().st_mode & 0o777) == "0o600"
    manifest = ctx.dir.read_manifest()
    assert manifest["last_action"] == {"action": "install", "outcome": "ok", "at": manifest["updated_at"]}
    assert manifest["url"] == outcome.url


@pytest.mark.parametrize("path", sorted(ROUTED))
def test_each_public_ingestion_path_reaches_its_service(host, acme, path):
    client, _ = acme
    service = ROUTED[path][0]
    assert served_by(host.edge.http_port, domain(client), path) == f"{client}-{service}"


@pytest.mark.parametrize(("sent", "received"), [("/livestream/events?token=x", "/events?token=x"),
                                                 ("/livestream", "/"), ("/posthog/exports/x", "/posthog/exports/x"),
                                                 ("/e/?ip=1", "/e/?ip=1")])
def test_livestream_loses_its_prefix_and_every_other_service_sees_the_path_as_sent(host, acme, sent, received):
    """Upstream's proxy strips /livestream (web's LIVESTREAM_HOST is <site>/livestream; livestream serves /events);
    object storage needs the bucket in the path, capture its own path."""
    client, _ = acme
    status, _, body = request(host.edge.http_port, domain(client), sent)
    assert status == 200 and f" path={received} " in body, body


@pytest.mark.parametrize("path", TO_WEB)
def test_ui_paths_and_lookalikes_reach_web(host, acme, path):
    client, _ = acme
    assert served_by(host.edge.http_port, domain(client), path) == f"{client}-web"


def test_status_adds_the_health_probe(host, acme):
    client, _ = acme
    status = run(host.context(client, "status"), "status")
    assert status.state.value == "running", status
    probe = status.services[-1]
    assert (probe.name, probe.state.value) == ("/_health", "running")
    assert probe.detail == f"200 http://{domain(client)}:{host.edge.http_port}/_health"
    assert status.url == f"http://{domain(client)}:{host.edge.http_port}"


def test_reinstall_with_nothing_changed_changes_nothing(host, acme, docker_client):
    client, _ = acme
    ctx = host.context(client, "status")
    env_before = ctx.dir.env_file.read_bytes()
    compose_before = ctx.dir.compose_file.read_bytes()
    containers_before = host.containers(docker_client, client)
    outcome = host.install(client)
    assert outcome.summary.startswith(f"posthog for {client}: no changes"), outcome.summary
    assert host.containers(docker_client, client) == containers_before  # same ids, same created timestamps
    assert ctx.dir.env_file.read_bytes() == env_before
    assert ctx.dir.compose_file.read_bytes() == compose_before
    assert host.context(client, "plan").plan().is_noop


def test_two_clients_are_isolated_and_uninstalling_one_leaves_the_other(host, acme, docker_client,
                                                                         engine_run_id):
    a, _ = acme
    b = f"globex-{engine_run_id}"
    host.install(b)
    try:
        a_before, b_running = host.containers(docker_client, a), host.containers(docker_client, b)
        assert set(b_running) == set(a_before) and not set(dict(a_before.values())) & set(dict(b_running.values()))
        # routers: each host reaches its own client's services only
        assert served_by(host.edge.http_port, domain(b), "/e") == f"{b}-capture"
        assert served_by(host.edge.http_port, domain(a), "/e") == f"{a}-capture"
        # networks and volumes: per client project; only the edge network is shared, and only by routed services
        a_ctx, b_ctx = host.context(a, "status"), host.context(b, "status")
        for ctx in (a_ctx, b_ctx):
            db = docker_client.containers.get(container_name(ctx.project, "db"))
            assert set(db.attrs["NetworkSettings"]["Networks"]) == {f"{ctx.project}_default"}
            web = docker_client.containers.get(container_name(ctx.project, "web"))
            assert set(web.attrs["NetworkSettings"]["Networks"]) == {f"{ctx.project}_default", host.edge.network}
            mounts = {m["Name"] for m in db.attrs["Mounts"] if m["Type"] == "volume"}
            assert mounts == {f"{ctx.project}_postgres-data"}
        # secrets and directories
        a_env, b_env = a_ctx.env(), b_ctx.env()
        for key in ("POSTHOG_SECRET", "POSTHOG_ENCRYPTION_SALT_KEYS", "POSTHOG_POSTGRES_PASSWORD"):
            assert a_env[key] != b_env[key]
        assert a_ctx.dir.path != b_ctx.dir.path and a_ctx.dir.path.parent.parent == b_ctx.dir.path.parent.parent
    finally:
        run(host.context(b, "uninstall"), "uninstall", purge=True)
    assert host.containers(docker_client, b) == {}
    assert not docker_client.volumes.list(filters=project_filter(f"{b}_posthog"))
    assert not host.context(b, "status").dir.exists
    assert host.containers(docker_client, a) == a_before  # untouched
    assert served_by(host.edge.http_port, domain(a), "/e") == f"{a}-capture"
    # nothing serves the uninstalled client's host any more (on plain HTTP only the edge's redirect remains)
    wait_until(lambda: served_by(host.edge.http_port, domain(b), "/e") in ("<301>", "<308>", "<404>"), 15, 0.3,
               "the uninstalled client's routes to disappear")


def _psql(docker_client, project: str, sql: str) -> str:
    db = docker_client.containers.get(container_name(project, "db"))
    code, out = db.exec_run(["psql", "-U", "posthog", "-d", "posthog", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
    assert code == 0, out.decode()
    return out.decode().strip()


def test_db_backup_destroy_volume_restore(host, acme, docker_client, tmp_path):
    """PostHog's db on the real Postgres image: write data, back up, destroy the volume, restore, data equal."""
    client, _ = acme
    ctx = host.context(client, "backup")
    for name in ("temporal", "temporal_visibility"):  # Temporal's auto-setup creates them; echo stands in for it
        if not _psql(docker_client, ctx.project, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            _psql(docker_client, ctx.project, f"CREATE DATABASE {name}")
    _psql(docker_client, ctx.project, "CREATE TABLE events_probe (id int primary key, name text);"
                                      "INSERT INTO events_probe SELECT i, 'event ' || i FROM generate_series(1, 500) i")
    expected = _psql(docker_client, ctx.project, "SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) "
                                                 "FROM events_probe")
    clickhouse = docker_client.containers.get(container_name(ctx.project, "clickhouse"))
    assert clickhouse.exec_run(["sh", "-c", "echo marker-1 > /var/lib/clickhouse/marker"])[0] == 0
    result = run_backup(ctx, dest=tmp_path)
    parts = {p["name"] for p in result.parts}
    assert {"postgres", "temporal", "temporal-visibility", "clickhouse", "objectstorage", "seaweedfs", "env"} <= parts

    # destroy the database volume (and the marker), then restore from the archive
    db = docker_client.containers.get(container_name(ctx.project, "db"))
    db.remove(force=True)
    docker_client.volumes.get(f"{ctx.project}_postgres-data").remove(force=True)
    assert clickhouse.exec_run(["rm", "/var/lib/clickhouse/marker"])[0] == 0
    outcome = run_restore(host.context(client, "restore"), Path(result.archive))
    assert "restored" in outcome.summary
    assert _psql(docker_client, ctx.project, "SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) "
                                             "FROM events_probe") == expected
    clickhouse = docker_client.containers.get(container_name(ctx.project, "clickhouse"))
    assert clickhouse.exec_run(["cat", "/var/lib/clickhouse/marker"])[1].decode().strip() == "marker-1"
    wait_until(lambda: served_by(host.edge.http_port, domain(client), "/_health") == f"{client}-web", 30, 0.3,
               "PostHog to be served again after the restore")


def test_service_names_resolve_to_the_own_client_only(host, acme, docker_client, engine_run_id):
    """A client's containers must never reach another client's services by name over the shared edge network."""
    a, _ = acme
    b = f"zeta-{engine_run_id}"  # sorts after the edge network's name: Docker's resolver then asks the edge net first
    host.install(b)
    try:
        for client in (a, b):
            project = host.context(client, "status").project
            web = docker_client.containers.get(container_name(project, "web"))
            for name in ("capture", "plugins"):
                target = docker_client.containers.get(container_name(project, name))
                own = {n["IPAddress"] for n in target.attrs["NetworkSettings"]["Networks"].values()}
                code, out = web.exec_run(["nslookup", name])
                answers = set(re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out.decode().split("Name:", 1)[-1]))
                assert code == 0 and answers and answers <= own, (client, name, answers, own)
    finally:
        run(host.context(b, "uninstall"), "uninstall", purge=True)


def test_make_status_logs_and_restart_targets(host, acme, tmp_path, docker_client):
    """``make posthog-status`` / ``posthog-logs`` / ``posthog-restart`` as the seed documents them; CLIENT_ID passes
    through the env. (``make posthog`` and ``posthog-backup`` run the same CLI commands, which need PostHog's real
    images and ClickHouse here: they are covered in-process by the install and backup tests.)"""
    import shutil
    import subprocess

    if shutil.which("make") is None or shutil.which("agencystack") is None:
        pytest.skip("make or the agencystack console script is not installed (run 'make install')")
    client, _ = acme
    env = engine_env(AGENCYSTACK_ROOT=str(host.root), AGENCYSTACK_LOG_DIR=str(tmp_path / "log"))
    repo = Path(__file__).resolve().parents[3]
    status = subprocess.run(["make", "-s", "posthog-status", f"CLIENT_ID={client}"],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "/_health" in status.stdout and client in status.stdout and "running" in status.stdout
    logs = subprocess.run(["make", "-s", "posthog-logs", f"CLIENT_ID={client}"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert logs.returncode == 0, logs.stderr
    assert f"echo-httpd: {client}-web listening on :8000" in logs.stdout
    web = docker_client.containers.get(container_name(host.context(client, "status").project, "web"))
    started = web.attrs["State"]["StartedAt"]
    restart = subprocess.run(["make", "-s", "posthog-restart", f"CLIENT_ID={client}"], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=600)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    web.reload()
    assert web.attrs["State"]["StartedAt"] > started and web.status == "running"
    assert served_by(host.edge.http_port, domain(client), "/e") == f"{client}-capture"
