"""What the PostHog distribution's tests share (and tests/test_sso_engine.py, which protects PostHog's stack): the
facts of upstream's stack they check against, a fake upstream checkout, git remotes served like GitHub serves
PostHog's, and a PostHog host on the real engine behind the real edge (:func:`posthog_host`).

Import it as ``components.posthog.tests.helpers`` (the repository root is on the test path); fixtures live in
conftest.py beside it; the core's test helpers in tests/helpers.py and the public agencystack.testing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agencystack import HealthCheck, LifecycleContext, hookimpl, run
from agencystack.testing import engine_driver, load_plugins, open_context, project_filter, service_of
from tests.engine.helpers import engine_host
from tests.images.build import echo_command

# -- upstream's facts (docker-compose.hobby.yml + base, the reference notes) -----------------------------------------
SERVICES = {
    "db", "redis7", "valkey", "clickhouse", "zookeeper", "kafka", "kafka-init", "worker", "web", "migrate",
    "plugins", "ingestion-general", "ingestion-sessionreplay", "recording-api",
    "ingestion-error-tracking", "ingestion-logs", "ingestion-traces", "objectstorage", "seaweedfs", "browserless",
    "temporal", "elasticsearch", "temporal-admin-tools", "temporal-ui", "temporal-django-worker", "capture",
    "capture-logs", "replay-capture", "property-defs-rs", "property-defs-ai", "livestream", "personhog-replica",
    "personhog-router", "feature-flags", "hypercache-server", "cymbal", "cymbal-resolution",
}
#: the proxy table: path -> (service, port); every other path -> web:8000
ROUTED = {
    "/e": ("capture", 3000), "/e/": ("capture", 3000), "/i/v0/e/": ("capture", 3000),
    "/i/v0/ai": ("capture", 3000), "/i/v0/ai/": ("capture", 3000),  # no capture-ai service in hobby at the ref
    "/i/v1/analytics/events": ("capture", 3000), "/batch": ("capture", 3000), "/batch/": ("capture", 3000),
    "/capture": ("capture", 3000), "/capture/": ("capture", 3000),
    "/s": ("replay-capture", 3000), "/s/": ("replay-capture", 3000),
    "/i/v1/logs": ("capture-logs", 4318), "/i/v1/traces": ("capture-logs", 4318),
    "/i/v1/metrics": ("capture-logs", 4318),
    "/flags": ("feature-flags", 3001), "/flags/": ("feature-flags", 3001),
    "/api/feature_flag/local_evaluation": ("feature-flags", 3001),
    "/surveys": ("hypercache-server", 3002), "/api/surveys": ("hypercache-server", 3002),
    "/api/surveys/": ("hypercache-server", 3002), "/array/phc_x/config.js": ("hypercache-server", 3002),
    "/public/webhooks/x": ("plugins", 6738), "/public/m/x": ("plugins", 6738),
    "/livestream/events": ("livestream", 8080), "/posthog/exports/x": ("objectstorage", 19000),
}
TO_WEB = ["/", "/_health", "/engage", "/engage/", "/events", "/settings", "/signup", "/shared/x", "/sx", "/e2",
          "/batchx", "/capturex", "/flagsx", "/decide/", "/api/projects/1/", "/i/v0x", "/static/x.js",
          "/api/feature_flag/", "/public/x", "/posthogx", "/livestreams"]


def fake_upstream(root: Path) -> Path:
    """A small stand-in for a PostHog checkout at the pinned ref: the files the stack mounts, by name."""
    files = {
        "docker/clickhouse/config.xml": "<clickhouse/>\n", "docker/clickhouse/config.d/default.xml": "<clickhouse/>\n",
        "docker/clickhouse/users.xml": "<clickhouse/>\n",
        "docker/clickhouse/user_defined_function.xml": "<functions/>\n",
        "posthog/idl/events.json": "{}\n",
        "posthog/user_scripts/aggregate_funnel": "#!/bin/sh\nexec \"$0_$(uname -m)\" \"$@\"\n",
        "posthog/user_scripts/user_defined_function.xml": "<functions/>\n",
        "docker/kafka/topics.txt": "# topics\nevents_plugin_ingestion\nclickhouse_events_json\n",
        "docker/temporal/dynamicconfig/development-sql.yaml": "{}\n",
        "docker/livestream/configs-hobby.yml": "kafka: {}\n",
        "docker/clickhouse/docker-entrypoint-initdb.d/init-db.sh": "#!/bin/sh\n",
    }
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    # upstream's funnel UDF wrapper is a program (git mode 100755): ClickHouse executes it
    (root / "posthog/user_scripts/aggregate_funnel").chmod(0o755)
    geoip_db(root / "share/GeoLite2-City.mmdb")
    return root


def geoip_db(path: Path, kind: str = "GeoLite2-City") -> Path:
    """A real (tiny) MaxMind database: 81.2.69.0/24 is London."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=kind, languages=["en"],
                        description={"en": "agencystack test"})
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"city": {"names": {"en": "London"}}, "country": {"iso_code": "GB"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def posthog_context(plugins: Any, *, client: str = "acme", action: str = "plan", flags: dict[str, str] | None = None,
                    domain: str | None = None) -> LifecycleContext:
    """A PostHog context for client ``acme`` (unless told otherwise), as the CLI builds one."""
    return open_context(plugins, "posthog", action, client=client, flags=flags, domain=domain)


# -- git remotes: upstream's history, served as GitHub serves PostHog's ------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def checkout(path: Path) -> Path:
    """A git checkout of the fake upstream tree, plus a large file the stack never needs."""
    fake_upstream(path)
    (path / "frontend").mkdir()
    (path / "frontend/bundle.js").write_bytes(os.urandom(2 << 20))
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "upstream at the pinned ref")
    return path


def serve(work: Path, bare: Path) -> str:
    """A bare copy of ``work`` served as GitHub serves PostHog's (partial clone, any commit by its id); its URL."""
    git(bare.parent, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "config", "uploadpack.allowFilter", "true")
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    return f"file://{bare}"


class Counting:
    """The real driver, with its registry questions counted."""

    def __init__(self):
        self.driver, self.asked = engine_driver(engine_host()), []

    def published(self, image):
        self.asked.append(image)
        return self.driver.published(image)


# -- PostHog on the real engine, behind the real edge --------------------------------------------------------------
ECHO_IDLE_PORT = 9000  # where services without a route listen


class EchoImages:
    """Test-only: every service but ``db`` (and the SSO gate) runs the echo backend named ``<client>-<service>`` on
    its routed port; jobs exit 0; health checks ask the echo backend. The ClickHouse backup part copies a marker file
    instead."""

    def __init__(self, busybox: str):
        self.busybox = busybox

    @hookimpl
    def modify_stack(self, context, stack):
        if context.component.name != "posthog":
            return
        ports = {r.service: r.port for r in stack.routes}
        for service in stack.services:
            if service.name in ("db", "sso-proxy"):  # the SSO gate (tests/test_sso_engine.py) is real
                continue
            service.image, service.entrypoint = self.busybox, None
            if service.job:
                service.command, service.healthcheck = ["sh", "-c", "exit 0"], None
                continue
            port = ports.get(service.name, ECHO_IDLE_PORT)
            service.command = echo_command(f"{context.client}-{service.name}", port)
            service.healthcheck = HealthCheck(test=["CMD", "wget", "-q", "-O", "/dev/null",
                                                    f"http://127.0.0.1:{port}/"], interval=1, retries=60)
        for part in stack.backups:
            if part.name == "clickhouse":
                part.dump = ["sh", "-c", "cat /var/lib/clickhouse/marker"]
                part.load = ["sh", "-c", "cat > /var/lib/clickhouse/marker"]


class Host:
    """An AgencyStack root with the edge, where PostHog installs for any client through the real hooks."""

    def __init__(self, root: Path, upstream: Path, images: dict[str, str], edge):
        self.root, self.upstream, self.images, self.edge = root, upstream, images, edge

    def plugins(self):
        plugins = load_plugins()
        record = plugins.register(EchoImages(self.images["busybox"]), "echo-images")
        assert record.ok, record.error
        return plugins

    def context(self, client: str, action: str, **flags: str) -> LifecycleContext:
        return open_context(
            self.plugins(), "posthog", action, client=client, domain=domain(client) if action == "install" else None,
            flags={"POSTHOG_UPSTREAM_DIR": str(self.upstream), "POSTHOG_POSTGRES_IMAGE": self.images["postgres"],
                   "POSTHOG_NODE_TAG": "echo",  # EchoImages swaps every image; no Node image lookup needed
                   "POSTHOG_RUST_TAG": "echo",  # nor a Rust image lookup
                   **flags} if action == "install" else flags)

    def install(self, client: str):
        return run(self.context(client, "install"), "install")

    def containers(self, docker_client, client: str) -> dict[str, tuple[str, str]]:
        found = docker_client.containers.list(all=True, filters=project_filter(f"{client}_posthog"))
        return {service_of(c.labels): (c.id, c.attrs["Created"]) for c in found}


def domain(client: str) -> str:
    return f"analytics.{client}.localhost"


@contextlib.contextmanager
def posthog_host(tmp: Path, images: dict[str, str], run_id: str, kind: type[Host] = Host) -> Iterator[Host]:
    """A :class:`Host` (or ``kind``) in ``tmp``: a fake upstream checkout and the edge on the test engine."""
    from tests.helpers import edge_host

    upstream = fake_upstream(tmp / "upstream")
    with edge_host(tmp, images, run_id) as edge:
        yield kind(tmp / "root", upstream, images, edge)


@pytest.fixture(scope="module")
def host(images, engine_run_id, tmp_path_factory):
    """The PostHog test stack, module-wide (import it as a fixture: ``from components.posthog.tests.helpers import
    acme, host``)."""
    with posthog_host(tmp_path_factory.mktemp("posthog"), images, engine_run_id) as host:
        yield host


@pytest.fixture(scope="module")
def acme(host, engine_run_id):
    """One client installed (module-wide: the install is the expensive part): (client, install outcome)."""
    client = f"acme-{engine_run_id}"
    outcome = host.install(client)
    yield client, outcome
    with contextlib.suppress(Exception):
        run(host.context(client, "uninstall"), "uninstall", purge=True)
