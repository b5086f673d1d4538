"""PostHog's stack as data: upstream's hobby deployment, checked against a table of its facts; secrets generated
once in the right formats; the rendered compose file accepted by docker compose v2. (Upstream files and GeoIP:
test_posthog_files.py.)"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from agencystack import GlobalSettings, LifecycleContext
from agencystack.testing import compose_file
from agencystack_posthog.stack import write_files
from components.posthog.tests.helpers import ROUTED, SERVICES, TO_WEB, fake_upstream, posthog_context
from components.posthog.tests.posthog_upstream import DATA

# -- upstream's facts (docker-compose.hobby.yml + base, the reference notes) -----------------------------------------
DJANGO_ENV = {"SITE_URL", "SECRET_KEY", "ENCRYPTION_SALT_KEYS", "DATABASE_URL", "PGHOST", "PGUSER", "PGPASSWORD",
              "CLICKHOUSE_HOST", "CLICKHOUSE_DATABASE", "CLICKHOUSE_SECURE", "CLICKHOUSE_VERIFY", "KAFKA_HOSTS",
              "REDIS_URL", "OBJECT_STORAGE_ENABLED", "OBJECT_STORAGE_ENDPOINT", "OBJECT_STORAGE_ACCESS_KEY_ID",
              "OBJECT_STORAGE_SECRET_ACCESS_KEY", "OBJECT_STORAGE_PUBLIC_ENDPOINT", "SESSION_RECORDING_V2_S3_ENDPOINT",
              "IS_BEHIND_PROXY", "DISABLE_SECURE_SSL_REDIRECT", "DEPLOYMENT", "CDP_API_URL", "RECORDING_API_URL",
              "INTERNAL_API_SECRET", "FEATURE_FLAGS_SERVICE_URL", "PERSONHOG_ADDR", "OTEL_SDK_DISABLED"}
NODE_ENV = {"PERSONS_DATABASE_URL", "CDP_REDIS_HOST", "CDP_REDIS_PORT", "CDP_VALKEY_HOST", "CDP_VALKEY_PORT",
            "LOGS_REDIS_HOST", "LOGS_REDIS_TLS", "TRACES_REDIS_HOST", "TRACES_REDIS_TLS", "ENCRYPTION_SALT_KEYS",
            "KAFKA_HOSTS", "DATABASE_URL"}
REQUIRED_ENV = {
    "web": DJANGO_ENV | {"LIVESTREAM_HOST"}, "worker": DJANGO_ENV, "temporal-django-worker": DJANGO_ENV,
    "migrate": DJANGO_ENV, "plugins": NODE_ENV, "ingestion-general": NODE_ENV | {"AI_BLOB_S3_BUCKET"},
    "ingestion-sessionreplay": NODE_ENV | {"SESSION_RECORDING_V2_S3_ENDPOINT"},
    "db": {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"},
    "capture": {"ADDRESS", "KAFKA_TOPIC", "KAFKA_HOSTS", "CAPTURE_MODE"},
    "replay-capture": {"ADDRESS", "KAFKA_TOPIC", "CAPTURE_MODE"},
    "feature-flags": {"WRITE_DATABASE_URL", "READ_DATABASE_URL", "PERSONS_WRITE_DATABASE_URL",
                      "PERSONS_READ_DATABASE_URL", "MAXMIND_DB_PATH", "REDIS_URL", "ADDRESS"},
    "recording-api": NODE_ENV | {"SESSION_RECORDING_API_REDIS_HOST", "SESSION_RECORDING_V2_S3_ENDPOINT",
                                 "INTERNAL_API_SECRET"},
    "capture-logs": {"BIND_PORT", "KAFKA_TOPIC", "KAFKA_METRICS_TOPIC"},
    "personhog-router": {"GRPC_ADDRESS", "REPLICA_URL"}, "personhog-replica": {"GRPC_ADDRESS", "PRIMARY_DATABASE_URL"},
    "temporal": {"DB", "POSTGRES_USER", "POSTGRES_PWD", "POSTGRES_SEEDS", "ENABLE_ES"},
    "livestream": {"LIVESTREAM_JWT_SECRET"}, "browserless": {"TOKEN"},
    "clickhouse": {"CLICKHOUSE_SKIP_USER_SETUP", "CLICKHOUSE_PASSWORD"},
}
#: posthog-node runs one image as many services, chosen by PLUGIN_SERVER_MODE (names from the Node code's enum:
#: an unknown mode makes the process exit at start)
NODE_MODES = {"plugins": None, "ingestion-general": "ingestion-v2-combined",
              "ingestion-sessionreplay": "recordings-blob-ingestion-v2", "recording-api": "recording-api",
              "ingestion-error-tracking": "ingestion-errortracking", "ingestion-logs": "ingestion-logs",
              "ingestion-traces": "ingestion-traces"}
JOBS = {"kafka-init", "migrate"}
PUBLIC_PATH_PRIORITY, CATCH_ALL_PRIORITY = 100, 10


@pytest.fixture
def ctx(agencystack_plugins, tmp_path) -> LifecycleContext:
    return posthog_context(agencystack_plugins, domain="analytics.acme.com",
                        flags={"POSTHOG_UPSTREAM_DIR": str(fake_upstream(tmp_path / "upstream"))})


def test_every_upstream_service_and_no_proxy(ctx):
    names = {s.name for s in ctx.stack().services}
    assert names == SERVICES
    assert "proxy" not in names  # the edge replaces Caddy


@pytest.mark.parametrize("service", sorted(REQUIRED_ENV))
def test_required_env_keys(ctx, service):
    env = ctx.stack().service(service).environment
    assert REQUIRED_ENV[service] <= set(env), sorted(REQUIRED_ENV[service] - set(env))


def test_values_that_matter(ctx):
    stack = ctx.stack()
    web = stack.service("web").environment
    assert web["SITE_URL"] == "https://analytics.acme.com"
    assert web["SECRET_KEY"] == "${POSTHOG_SECRET}"
    assert web["ENCRYPTION_SALT_KEYS"] == "${POSTHOG_ENCRYPTION_SALT_KEYS}"
    assert web["DATABASE_URL"] == "postgres://posthog:${POSTHOG_POSTGRES_PASSWORD}@db:5432/posthog"
    assert web["IS_BEHIND_PROXY"] == "true" and web["DEPLOYMENT"] == "hobby"
    assert web["CDP_API_URL"] == "http://plugins:6738"
    assert web["FEATURE_FLAGS_SERVICE_URL"] == "http://feature-flags:3001"
    assert stack.service("redis7").command == ["redis-server", "--maxmemory-policy", "allkeys-lru",
                                                "--maxmemory", "200mb"]
    assert stack.service("db").healthcheck.test == ["CMD-SHELL", "pg_isready -U posthog"]
    assert "9644/v1/status/ready" in stack.service("kafka").healthcheck.test[-1]
    assert ":8123/ping" in stack.service("clickhouse").healthcheck.test[-1]
    assert "--memory 576M" in stack.service("kafka").command  # one argv word per option, as upstream passes it;
    # the value follows kafka's memory limit (limits.redpanda_memory), not upstream's 3G
    assert stack.service("temporal").environment["ENABLE_ES"] == "false"
    assert stack.service("temporal").environment["DB"] == "postgres12"  # auto-setup 1.26 knows no "postgresql"
    assert stack.service("personhog-router").environment["REPLICA_URL"] == "http://personhog-replica:50051"


@pytest.mark.parametrize("service", sorted(NODE_MODES))
def test_node_services_run_the_node_image_in_their_mode(ctx, service):
    node = ctx.stack().service(service)
    assert node.image.startswith("posthog/posthog-node:") and node.command == ["node", "nodejs/dist/index.js"]
    assert node.environment.get("PLUGIN_SERVER_MODE") == NODE_MODES[service]


def test_every_consumer_gets_the_same_generated_passwords(ctx):
    """Upstream hard-codes them; here they are generated per client and referenced identically everywhere."""
    stack = ctx.stack()
    for service in stack.services:
        for key, value in service.environment.items():
            assert "posthog:posthog@" not in value and value != "object_storage_root_password", (service.name, key)
            if key in ("DATABASE_URL", "PERSONS_DATABASE_URL", "WRITE_DATABASE_URL", "READ_DATABASE_URL"):
                assert value == "postgres://posthog:${POSTHOG_POSTGRES_PASSWORD}@db:5432/posthog"
            if key in ("PGPASSWORD", "POSTGRES_PASSWORD", "POSTGRES_PWD"):
                assert value == "${POSTHOG_POSTGRES_PASSWORD}"
            if key in ("CLICKHOUSE_PASSWORD", "CLICKHOUSE_API_PASSWORD", "CLICKHOUSE_APP_PASSWORD"):
                assert value == "${POSTHOG_CLICKHOUSE_PASSWORD}"
            if key == "OBJECT_STORAGE_SECRET_ACCESS_KEY" and service.name not in ("cymbal", "cymbal-resolution"):
                assert value == "${POSTHOG_OBJECT_STORAGE_PASSWORD}"
    assert stack.service("objectstorage").environment["OBJECT_STORAGE_SECRET"] == "${POSTHOG_OBJECT_STORAGE_PASSWORD}"
    assert stack.references() <= set(ctx.env())


def test_logs_capped_and_jobs(ctx):
    for service in ctx.stack().services:
        assert (service.logging.driver, service.logging.options) == ("json-file", {"max-size": "50m",
                                                                                   "max-file": "3"})
    jobs = {s.name for s in ctx.stack().services if s.job}
    assert jobs == JOBS
    stack = ctx.stack()
    assert stack.service("kafka-init").depends_on == {"kafka": "healthy"}
    assert stack.service("migrate").depends_on["kafka-init"] == "completed"
    for name in ("web", "worker", "temporal-django-worker"):
        assert stack.service(name).depends_on["migrate"] == "completed"


def test_routes_are_upstreams_proxy_table(ctx):
    stack = ctx.stack()
    web = stack.routes[-1]
    assert (web.service, web.port, web.paths, web.prefixes, web.priority) == ("web", 8000, [], [], CATCH_ALL_PRIORITY)
    for route in stack.routes[:-1]:
        assert route.public and route.priority == PUBLIC_PATH_PRIORITY and route.host == "analytics.acme.com"
    # upstream's proxy strips only /livestream (web's LIVESTREAM_HOST is <site>/livestream)
    assert [r.service for r in stack.routes if r.strip_prefix] == ["livestream"]


def _match(stack, path: str):
    """Which route the edge's rules send ``path`` to (highest priority first), evaluated from the labels."""
    best = None
    for service in stack.services:
        for key, rule in service.labels.items():
            if not key.endswith(".rule"):
                continue
            router = key.removesuffix(".rule")
            exact = re.findall(r"Path\(`([^`]*)`\)", rule)
            subtree = re.findall(r"PathPrefix\(`([^`]*)`\)", rule)
            hit = (not exact and not subtree) or path in exact or any(path.startswith(p) for p in subtree)
            priority = int(service.labels[f"{router}.priority"])
            name = router.split(".")[-1]
            port = int(service.labels[f"traefik.http.services.{name}.loadbalancer.server.port"])
            if hit and (best is None or priority > best[0]):
                best = (priority, service.name, port)
    return best[1:]


@pytest.mark.parametrize("path", sorted(ROUTED))
def test_ingestion_paths_reach_their_service(ctx, path):
    assert _match(ctx.stack(), path) == ROUTED[path]


@pytest.mark.parametrize("path", TO_WEB)
def test_everything_else_and_lookalikes_go_to_web(ctx, path):
    assert _match(ctx.stack(), path) == ("web", 8000)


def test_edge_labels_and_network(ctx):
    stack = ctx.stack()
    capture = stack.service("capture")
    assert capture.labels["traefik.http.routers.acme_posthog_capture.entrypoints"] == "websecure"
    assert capture.labels["traefik.http.routers.acme_posthog_capture.tls.certresolver"] == "letsencrypt"
    assert capture.labels["traefik.docker.network"] == "agencystack_edge"
    assert "agencystack_edge" in capture.networks
    assert stack.network("agencystack_edge").external
    assert "agencystack_edge" not in stack.service("db").networks  # only routed services join the edge


def test_probe_backups_and_resources(ctx, agencystack_plugins):
    stack = ctx.stack()
    assert [p.url for p in stack.probes] == ["https://analytics.acme.com/_health"]
    parts = {p.name: p for p in stack.backups}
    assert parts["postgres"].kind == "postgres" and parts["postgres"].password_key == "POSTHOG_POSTGRES_PASSWORD"
    assert (parts["postgres"].user, parts["postgres"].database) == ("posthog", "posthog")
    assert parts["clickhouse"].kind == "command" and "BACKUP DATABASE posthog" in parts["clickhouse"].dump[-1]
    assert "RESTORE DATABASE posthog" in parts["clickhouse"].load[-1]
    assert {parts["objectstorage"].volume, parts["seaweedfs"].volume} == {"objectstorage-data", "seaweedfs"}
    assert parts["env"].kind == "env"
    spec = agencystack_plugins.component("posthog")
    assert spec.requires == ("edge",)
    r = spec.resources
    assert (r.min_memory_gb, r.min_cpus, r.recommended_memory_gb, r.recommended_cpus) == (4, 2, 16, 4)


def test_dev_domain_probe_is_plain_http(agencystack_plugins, tmp_path):
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": str(fake_upstream(tmp_path))})
    assert ctx.settings.domain == "posthog.acme.localhost"  # per client: posthog.<client>.<DOMAIN>
    assert [p.url for p in ctx.stack().probes] == ["http://posthog.acme.localhost/_health"]


# -- issue 9: first-boot defects ---------------------------------------------------------------------------------
UPSTREAM_DATA = DATA


def test_migrate_job_runs_upstreams_bin_migrate_as_the_image_ships_it(ctx):
    """Not a re-typed subset of its steps: upstream's web runs ./bin/migrate (persons, product databases,
    replicated schema, the no-op and check steps), so the job runs that very script, in hobby mode."""
    migrate = ctx.stack().service("migrate")
    assert migrate.command == ["./bin/migrate"] and migrate.entrypoint is None
    assert migrate.environment["DEPLOYMENT"] == "hobby"
    assert (UPSTREAM_DATA / "bin/migrate").read_text().startswith("#!/bin/bash")  # upstream's, vendored


def test_postgres_runs_no_init_scripts_as_upstream_hobby_runs_none(ctx):
    """Upstream's base file mounts ./docker/postgres-init-scripts relative to itself, a directory the hobby
    deployment does not have: its Postgres starts with an empty init directory. So does ours."""
    db = ctx.stack().service("db")
    assert [m.target for m in db.volumes] == ["/var/lib/postgresql/data"]
    hobby = yaml.safe_load((UPSTREAM_DATA / "docker-compose.hobby.yml").read_text())["services"]["db"]
    assert hobby["volumes"] == ["postgres-data:/var/lib/postgresql/data"]  # hobby adds no init mount of its own


def _readiness_loop(ctx, tmp_path: Path, answers: dict[str, str]) -> bool:
    """Run objectstorage's real entrypoint loop against a stand-in ``weed`` answering ``answers``; ready or not."""
    tmp_path.mkdir()
    weed = tmp_path / "weed"
    cases = "".join(f"  *{command}*) printf '%s\\n' '{word}' ;;\n" for command, word in answers.items())
    weed.write_text(f"#!/bin/sh\n[ \"$1\" = shell ] || exec sleep 0\ninput=$(cat)\ncase \"$input\" in\n{cases}esac\n")
    weed.chmod(0o755)
    ready = tmp_path / "ready"
    script = ctx.stack().service("objectstorage").entrypoint[2]
    script = script.replace("/usr/bin/weed", str(weed)).replace("/tmp/objectstorage-ready", str(ready))
    script = script.replace("do sleep 1; done", "do exit 0; done")  # one round of the loop is enough here
    subprocess.run(["sh", "-c", script, "--", "server"], env={"OBJECT_STORAGE_SECRET": "x", "PATH": "/usr/bin:/bin"},
                   timeout=20, check=False)
    deadline = time.monotonic() + 3  # the loop runs in the background, as in the container
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return ready.exists()


def test_object_storage_is_ready_only_with_buckets_and_the_access_identity(ctx, tmp_path):
    """Upstream's loop waits for the ai-blobs bucket AND object_storage_root_user in s3.configure."""
    assert not _readiness_loop(ctx, tmp_path / "a", {"s3.bucket.list": "posthog ai-blobs"})
    assert _readiness_loop(ctx, tmp_path / "b", {"s3.bucket.list": "posthog ai-blobs",
                                                 "s3.configure": "object_storage_root_user"})


def test_temporal_and_elasticsearch_have_the_base_files_healthchecks(ctx):
    stack = ctx.stack()
    temporal, es = stack.service("temporal"), stack.service("elasticsearch")
    assert temporal.healthcheck.test == ["CMD-SHELL", "nc -z $(hostname) 7233"]
    check = temporal.healthcheck
    assert (check.interval, check.retries, check.start_period) == (5, 30, 300)
    assert es.healthcheck.test[0] == "CMD-SHELL" and "_cluster/health" in es.healthcheck.test[1]
    assert temporal.depends_on["elasticsearch"] == "healthy"


def test_ai_ingestion_goes_to_capture_at_the_ref(ctx):
    """An older proxy sent /i/v0/ai to a capture-ai service; the hobby file at the ref has none, so /i/v0/* (AI
    events included) goes to capture."""
    hobby = yaml.safe_load((UPSTREAM_DATA / "docker-compose.hobby.yml").read_text())["services"]
    assert "capture-ai" not in hobby
    assert not any(s.name == "capture-ai" for s in ctx.stack().services)
    capture = next(r for r in ctx.stack().routes if r.service == "capture")
    assert "/i/v0" in capture.prefixes


def test_registry_mirror_prefixes_every_image(agencystack_plugins, tmp_path):
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_REGISTRY_MIRROR": "mirror.internal:5000/",
                                                   "POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    images = {s.name: s.image for s in ctx.stack().services}
    assert all(i.startswith("mirror.internal:5000/") for i in images.values()), images
    assert images["web"] == f"mirror.internal:5000/posthog/posthog:{ctx.settings.app_tag}"
    assert images["plugins"] == f"mirror.internal:5000/posthog/posthog-node:{ctx.settings.upstream_ref}"  # unresolved
    ref = ctx.settings.upstream_ref
    assert images["capture"] == f"mirror.internal:5000/ghcr.io/posthog/posthog/capture:sha-{ref[:7]}"  # unresolved
    assert images["db"] == "mirror.internal:5000/postgres:15.12-alpine"


def test_no_rust_image_floats_on_master_and_the_override_still_applies(agencystack_plugins, tmp_path):
    """Defect 4 of issue 9: the Rust services ran :master while the app and Node images were pinned."""
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    rust = {s.name: s.image for s in ctx.stack().services if s.image.startswith("ghcr.io/posthog/posthog/")}
    assert set(rust) >= {"capture", "replay-capture", "capture-logs", "property-defs-rs", "property-defs-ai",
                         "feature-flags", "hypercache-server", "personhog-replica", "personhog-router", "cymbal",
                         "cymbal-resolution"}
    assert not [i for name, i in rust.items() if name != "livestream" and i.endswith(":master")], rust
    # a host that resolved the tags names them in every command; the operator's tag overrides all of them
    from agencystack_posthog import rust_images

    cache = rust_images.cache_file(GlobalSettings.load().state_root, ctx.settings.upstream_ref)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text('{"capture": "sha-1234567"}')
    again = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    assert {s.name: s.image for s in again.stack().services}["replay-capture"].endswith("/capture:sha-1234567")
    pinned = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path),
                                                      "POSTHOG_RUST_TAG": "master"})
    assert {s.name: s.image for s in pinned.stack().services}["cymbal"] == "ghcr.io/posthog/posthog/cymbal:master"


def test_every_image_is_pinned_by_a_setting(ctx):
    fields = type(ctx.settings).model_fields
    for name in ("postgres", "redis", "valkey", "clickhouse", "zookeeper", "redpanda", "seaweedfs", "temporal",
                 "temporal_admin_tools", "temporal_ui", "elasticsearch", "livestream", "browserless"):
        assert f"{name}_image" in fields
    assert {"app_tag", "node_tag", "rust_tag", "registry_mirror"} <= set(fields)
    assert re.fullmatch(r"[0-9a-f]{40}", ctx.settings.app_tag)  # a commit: upstream builds images per commit


# -- secrets ---------------------------------------------------------------------------------------------------
SECRET_FORMATS = {
    "POSTHOG_SECRET": r"[0-9a-f]{96}",
    "POSTHOG_ENCRYPTION_SALT_KEYS": r"[A-Za-z0-9_-]{32}(,[A-Za-z0-9_-]{32})*",
    "POSTHOG_INTERNAL_API_SECRET": r"[0-9a-f]{64}",
    "POSTHOG_INTERNAL_REQUEST_TOKEN": r"[0-9a-f]{64}",
    "POSTHOG_POSTGRES_PASSWORD": r"[0-9a-f]{48}",
    "POSTHOG_CLICKHOUSE_PASSWORD": r"[0-9a-f]{48}",
    "POSTHOG_OBJECT_STORAGE_PASSWORD": r"[0-9a-f]{48}",
    "POSTHOG_SESSION_RECORDING_V2_METADATA_SWITCHOVER": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
}


def test_secrets_generated_once_in_upstream_formats(agencystack_plugins, tmp_path):
    first = posthog_context(agencystack_plugins, action="install", flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    assert set(first.loaded.generated) == set(SECRET_FORMATS)
    env = first.env()
    for key, pattern in SECRET_FORMATS.items():
        assert re.fullmatch(pattern, env[key]), key
    datetime.fromisoformat(env["POSTHOG_SESSION_RECORDING_V2_METADATA_SWITCHOVER"])
    first.save_settings()
    saved = first.dir.env_file.read_bytes()
    assert oct(first.dir.env_file.stat().st_mode & 0o777) == "0o600"
    again = posthog_context(agencystack_plugins, action="install")
    assert again.loaded.generated == []
    assert {k: again.env()[k] for k in SECRET_FORMATS} == {k: env[k] for k in SECRET_FORMATS}
    assert again.save_settings() == []
    assert again.dir.env_file.read_bytes() == saved


def test_two_clients_get_different_secrets(agencystack_plugins, tmp_path):
    a = posthog_context(agencystack_plugins, client="acme", flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    b = posthog_context(agencystack_plugins, client="globex", flags={"POSTHOG_UPSTREAM_DIR": str(tmp_path)})
    for key in SECRET_FORMATS:
        if key != "POSTHOG_SESSION_RECORDING_V2_METADATA_SWITCHOVER":
            assert a.env()[key] != b.env()[key]


# -- the rendered compose file ---------------------------------------------------------------------------------
def test_rendered_compose_is_valid_against_the_compose_specification(ctx, compose_schema):
    import jsonschema

    doc = yaml.safe_load(compose_file(ctx))
    jsonschema.validators.validator_for(compose_schema)(compose_schema).validate(doc)
    assert set(doc["services"]) == SERVICES


def test_rendered_compose_is_valid_for_docker_compose(ctx, compose_bin, tmp_path):
    ctx.dir.ensure()
    ctx.save_settings()
    text = compose_file(ctx)
    for secret in ctx.settings.secret_values():
        assert secret not in text
    ctx.dir.compose_file.write_text(text)
    result = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--format", "json"],
                            cwd=ctx.dir.path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert set(doc["services"]) == SERVICES
    env = ctx.env()
    web = doc["services"]["web"]
    assert web["environment"]["SECRET_KEY"] == env["POSTHOG_SECRET"]  # compose resolved it from the .env
    assert web["environment"]["DATABASE_URL"] == f"postgres://posthog:{env['POSTHOG_POSTGRES_PASSWORD']}@db:5432/posthog"
    assert doc["services"]["kafka-init"]["command"][-1].count("$topic") >= 2  # shell variables survive as $
    assert doc["networks"]["agencystack_edge"]["external"] is True
    assert web["logging"] == {"driver": "json-file", "options": {"max-size": "50m", "max-file": "3"}}
    rendered = yaml.safe_load(text)
    assert rendered["services"]["capture"]["labels"]["traefik.enable"] == "true"


def test_start_scripts_and_clickhouse_overrides(tmp_path):
    assert write_files(tmp_path / "files") is True
    assert write_files(tmp_path / "files") is False
    start = tmp_path / "files/start"
    assert start.stat().st_mode & 0o111 and "/compose/wait" in start.read_text()
    assert 'from_env="CLICKHOUSE_PASSWORD"' in (tmp_path / "files/clickhouse-users.xml").read_text()


@pytest.mark.parametrize("docker_host, address", [
    ("unix:///var/run/docker.sock", "127.0.0.1"), ("tcp://10.0.0.5:2376", "10.0.0.5"),
    ("ssh://ops@engine.internal", "engine.internal"),
])
def test_health_probe_goes_to_the_engines_host(docker_host, address, agencystack_context, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    assert agencystack_context("posthog", client="acme").edge_address == address


def test_rendered_compose_is_the_same_bytes_with_or_without_libyaml(ctx, monkeypatch):
    """render uses libyaml's emitter when PyYAML has it; an install without libyaml writes the same file (a re-run
    on such a host must not see a change in compose.yaml)."""
    with_libyaml = compose_file(ctx)
    monkeypatch.delattr(yaml, "CSafeDumper")
    assert compose_file(ctx) == with_libyaml
