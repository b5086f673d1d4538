"""PostHog's Postgres, first start, on the real engine: the ``db`` service exactly as the stack defines it (image
setting pointed at the local Postgres 15 test image, environment with the generated password, its mounts), no init
scripts (upstream's hobby runs none; see the deviation table), init running to completion, and every database the
other services name reachable with their credentials.

Temporal's own image cannot run here (no registry): its auto-setup creates ``temporal`` and ``temporal_visibility``
with the credentials the stack gives it (``POSTGRES_USER`` / ``POSTGRES_PWD``), so the test creates them with those
same credentials, as that step does, and checks the backup parts name exactly those.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.posthog.tests.helpers import posthog_context
from tests.engine.helpers import wait_until

pytestmark = pytest.mark.engine

URL = re.compile(r"^postgres://(?P<user>[^:]+):(?P<password>[^@]+)@db:5432/(?P<db>[\w-]+)$")


def _resolve(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], value)


def _exec(container, cmd: list[str], **kwargs) -> tuple[int, str]:
    result = container.exec_run(cmd, **kwargs)
    return result.exit_code, result.output.decode(errors="replace")


@pytest.fixture
def stack(agencystack_plugins, images, tmp_path):
    ctx = posthog_context(agencystack_plugins, action="install", domain="analytics.acme.com",
                          flags={"POSTHOG_POSTGRES_IMAGE": images["postgres"],
                                 "POSTHOG_UPSTREAM_DIR": str(tmp_path / "unused")})
    return ctx.stack(), ctx.env()


def test_first_start_runs_init_to_completion_and_every_database_is_there(engine, stack):
    stack, env = stack
    db = stack.service("db")
    volumes = {}
    for mount in db.volumes:  # the service's own mounts: named volumes made for this test, bind mounts as given
        source = mount.source if Path(mount.source).is_absolute() else engine.volume(mount.source).name
        volumes[source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
    assert "/docker-entrypoint-initdb.d" not in {v["bind"] for v in volumes.values()}
    server = engine.run(db.image, name="db", environment={k: _resolve(v, env) for k, v in db.environment.items()},
                        volumes=volumes, network_mode=None, network=engine.default_network.name,
                        networking_config=None, hostname="db")

    def ready() -> bool:  # over TCP: during init the temporary server listens on its socket only
        return _exec(server, ["pg_isready", "-h", "127.0.0.1", "-U", "posthog"])[0] == 0

    wait_until(ready, 120, 0.5, "PostHog's Postgres to finish its first start")
    logs = server.logs().decode(errors="replace")
    assert "PostgreSQL init process complete; ready for start up." in logs, logs[-2000:]
    assert "running /docker-entrypoint-initdb.d/" not in logs  # as upstream's hobby Postgres: no init scripts
    # the stack's own healthcheck passes
    check = db.healthcheck.test
    assert _exec(server, ["sh", "-c", check[1]] if check[0] == "CMD-SHELL" else check[1:])[0] == 0

    # every database any service names in a postgres:// URL exists and takes that service's credentials
    urls = {(s.name, k): URL.match(_resolve(v, env)) for s in stack.services for k, v in s.environment.items()
            if isinstance(v, str) and v.startswith("postgres://")}
    assert urls and all(urls.values()), [k for k, m in urls.items() if not m]
    client = engine.run(db.image, ["infinity"], name="psql", entrypoint=["sleep"])
    for (service, key), match in sorted(urls.items()):
        code, out = _exec(client, ["psql", "-h", server.name, "-U", match["user"], "-d", match["db"], "-tAc",
                                   "SELECT current_database()"], environment={"PGPASSWORD": match["password"]})
        assert code == 0 and out.strip() == match["db"], f"{service} {key}: {out}"

    # Temporal: auto-setup creates its two databases with the credentials the stack gives it
    temporal = {k: _resolve(v, env) for k, v in stack.service("temporal").environment.items()}
    assert temporal["POSTGRES_SEEDS"] == "db" and temporal["DB_PORT"] == "5432"
    for name in ("temporal", "temporal_visibility"):
        code, out = _exec(client, ["psql", "-h", server.name, "-U", temporal["POSTGRES_USER"], "-d", "postgres",
                                   "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                          environment={"PGPASSWORD": temporal["POSTGRES_PWD"]})
        assert code == 0, out
    code, out = _exec(client, ["psql", "-h", server.name, "-U", "posthog", "-d", "posthog", "-tAc",
                               "SELECT datname FROM pg_database ORDER BY datname"],
                      environment={"PGPASSWORD": env["POSTHOG_POSTGRES_PASSWORD"]})
    databases = set(out.split())
    backed_up = {p.database for p in stack.backups if getattr(p, "service", None) == "db"}
    assert backed_up == {"posthog", "temporal", "temporal_visibility"} and backed_up <= databases
