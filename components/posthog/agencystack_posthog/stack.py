"""PostHog's stack: upstream's hobby deployment (docker-compose.hobby.yml extending docker-compose.base.yml at
``POSTHOG_UPSTREAM_REF``), service for service, as data.

What differs from upstream, and why, is ONE table: :data:`agencystack_posthog.deviations.DEVIATIONS`. It is a test,
not prose: ``tests/test_posthog_conformance.py`` compares the compose file rendered from this module with upstream's
own files vendored in ``tests/data/posthog-upstream`` (each with its commit) and fails on any difference the table
does not explain. In short: no Caddy (the edge routes :func:`routes`), generated per-client passwords, migrations as
a ``migrate`` job running upstream's ``bin/migrate``, nothing published on the host, our own start scripts
(:data:`SCRIPTS`) and ClickHouse overrides, and one environment per image family (:func:`django_env`,
:func:`node_env`). ``agencystack render posthog`` prints the compose file this module produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agencystack import (CommandDump, EnvFile, HealthCheck, HttpProbe, Limits, Mount, PostgresDump, Route, Service,
                         Stack, Volume, VolumeArchive, ref)

PG_USER = PG_DB = "posthog"
HEALTH_WAIT = 45 * 60  # install waits this long for /_health, as upstream's installer (ClickHouse + migrations)
PG_URL = f"postgres://{PG_USER}:{ref('POSTHOG_POSTGRES_PASSWORD')}@db:5432/{PG_DB}"
OBJECT_STORAGE_USER = "object_storage_root_user"
VOLUMES = ("postgres-data", "redis7-data", "clickhouse-data", "zookeeper-data", "zookeeper-datalog",
           "zookeeper-logs", "redpanda-data", "objectstorage-data", "seaweedfs")

#: ClickHouse users: the generated password for upstream's users (default, api, app) instead of theirs
CLICKHOUSE_USERS = """<clickhouse>
    <!-- agencystack: per-client password for the users upstream's users.xml defines -->
    <users>
        <default><password remove="1"/><password from_env="CLICKHOUSE_PASSWORD"/></default>
        <api><password remove="1"/><password from_env="CLICKHOUSE_PASSWORD"/></api>
        <app><password remove="1"/><password from_env="CLICKHOUSE_PASSWORD"/></app>
    </users>
</clickhouse>
"""
#: a local backup disk for ClickHouse's native BACKUP/RESTORE (the backup part streams the archive out)
CLICKHOUSE_BACKUPS = """<clickhouse>
    <storage_configuration><disks><backups><type>local</type><path>/var/lib/clickhouse/backups/</path></backups>
    </disks></storage_configuration>
    <backups><allowed_disk>backups</allowed_disk><allowed_path>/var/lib/clickhouse/backups/</allowed_path></backups>
</clickhouse>
"""
SCRIPTS = {
    "wait": """#!/bin/sh
# agencystack: block until ClickHouse (native port) and Postgres accept connections.
exec python3 -c '
import socket, time
for host, port in (("clickhouse", 9000), ("db", 5432)):
    while True:
        try:
            socket.create_connection((host, port), 2).close()
            break
        except OSError:
            print(f"waiting for {host}:{port}", flush=True)
            time.sleep(2)
'
""",
    "start": """#!/bin/sh
# agencystack: web. Migrations ran in the migrate job; wait for the databases, then serve.
set -e
/compose/wait
exec ./bin/docker-server
""",
    "temporal-django-worker": """#!/bin/sh
# agencystack: the Temporal Django worker, once the databases answer.
set -e
/compose/wait
exec ./bin/temporal-django-worker
""",
}


def _pg_env() -> dict[str, str]:
    return {"DATABASE_URL": PG_URL, "PGHOST": "db", "PGUSER": PG_USER,
            "PGPASSWORD": ref("POSTHOG_POSTGRES_PASSWORD")}


def _clickhouse_env() -> dict[str, str]:
    password = ref("POSTHOG_CLICKHOUSE_PASSWORD")
    return {"CLICKHOUSE_HOST": "clickhouse", "CLICKHOUSE_DATABASE": "posthog", "CLICKHOUSE_SECURE": "false",
            "CLICKHOUSE_VERIFY": "false", "CLICKHOUSE_PASSWORD": password, "CLICKHOUSE_API_USER": "api",
            "CLICKHOUSE_API_PASSWORD": password, "CLICKHOUSE_APP_USER": "app", "CLICKHOUSE_APP_PASSWORD": password}


def _object_storage_env(domain: str) -> dict[str, str]:
    return {"OBJECT_STORAGE_ENABLED": "true", "OBJECT_STORAGE_ENDPOINT": "http://objectstorage:19000",
            "OBJECT_STORAGE_PUBLIC_ENDPOINT": f"https://{domain}",
            "OBJECT_STORAGE_ACCESS_KEY_ID": OBJECT_STORAGE_USER,
            "OBJECT_STORAGE_SECRET_ACCESS_KEY": ref("POSTHOG_OBJECT_STORAGE_PASSWORD")}


def _replay_env() -> dict[str, str]:
    return {"SESSION_RECORDING_V2_S3_ENDPOINT": "http://seaweedfs:8333",
            "SESSION_RECORDING_V2_S3_ACCESS_KEY_ID": "any", "SESSION_RECORDING_V2_S3_SECRET_ACCESS_KEY": "any",
            "SESSION_RECORDING_V2_METADATA_SWITCHOVER": ref("POSTHOG_SESSION_RECORDING_V2_METADATA_SWITCHOVER")}


def django_env(s) -> dict[str, str]:
    """web, worker, the Temporal worker and the migrate job: upstream's worker env plus the hobby overrides."""
    return {
        "OTEL_SDK_DISABLED": "true", "OTEL_SERVICE_NAME": "posthog", "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "DISABLE_SECURE_SSL_REDIRECT": "true", "IS_BEHIND_PROXY": "true",
        **_pg_env(), **_clickhouse_env(),
        "CLICKHOUSE_LOGS_CLUSTER_HOST": "clickhouse", "CLICKHOUSE_LOGS_CLUSTER_SECURE": "false",
        "CLICKHOUSE_LOGS_CLUSTER_PASSWORD": ref("POSTHOG_CLICKHOUSE_PASSWORD"),
        "API_QUERIES_PER_TEAM": '{"1": 100}',
        "KAFKA_HOSTS": "kafka", "REDIS_URL": "redis://redis7:6379/",  # KAFKA_HOSTS as upstream's worker env has it
        "DEPLOYMENT": "hobby", "CDP_API_URL": "http://plugins:6738", "FLAGS_REDIS_ENABLED": "false",
        "SITE_URL": f"https://{s.domain}", "SECRET_KEY": ref("POSTHOG_SECRET"),
        "ENCRYPTION_SALT_KEYS": ref("POSTHOG_ENCRYPTION_SALT_KEYS"),
        "INTERNAL_API_SECRET": ref("POSTHOG_INTERNAL_API_SECRET"),
        "INTERNAL_REQUEST_TOKEN": ref("POSTHOG_INTERNAL_REQUEST_TOKEN"),
        **_object_storage_env(s.domain), **_replay_env(),
        "RECORDING_API_URL": "http://recording-api:6738",
        "FEATURE_FLAGS_SERVICE_URL": "http://feature-flags:3001",
        "PERSONHOG_ADDR": "personhog-router:50052", "PERSONHOG_ENABLED": "true",
        "BROWSERLESS_CDP_URL": "ws://browserless:3000", "BROWSERLESS_TOKEN": ref("POSTHOG_SECRET"),
        "HEATMAP_BROWSERLESS_URL": "http://browserless:3000", "HEATMAP_BROWSERLESS_TOKEN": ref("POSTHOG_SECRET"),
        "HEATMAP_BROWSERLESS_SCREENSHOT_COOKIES_ENABLED": "false",
        "POSTHOG_SKIP_MIGRATION_CHECKS": "1", "TEMPORAL_HOST": "temporal",
        "ANTHROPIC_API_KEY": ref("POSTHOG_ANTHROPIC_API_KEY"), "OPENAI_API_KEY": ref("POSTHOG_OPENAI_API_KEY"),
    }


def node_env(s, mode: str | None) -> dict[str, str]:
    """The Node services (posthog-node): upstream's plugins env plus the hobby overrides."""
    env = {
        "DATABASE_URL": PG_URL, "PERSONS_DATABASE_URL": PG_URL, "BEHAVIORAL_COHORTS_DATABASE_URL": PG_URL,
        "KAFKA_HOSTS": "kafka:9092", "REDIS_URL": "redis://redis7:6379/", **_clickhouse_env(),
        "COOKIELESS_REDIS_HOST": "redis7", "COOKIELESS_REDIS_PORT": "6379",
        "CDP_REDIS_HOST": "redis7", "CDP_REDIS_PORT": "6379", "CDP_VALKEY_HOST": "valkey", "CDP_VALKEY_PORT": "6379",
        "LOGS_REDIS_HOST": "redis7", "LOGS_REDIS_PORT": "6379", "LOGS_REDIS_TLS": "false",
        "TRACES_REDIS_HOST": "redis7", "TRACES_REDIS_PORT": "6379", "TRACES_REDIS_TLS": "false",
        "SESSION_RECORDING_API_REDIS_HOST": "redis7", "SESSION_RECORDING_API_REDIS_PORT": "6379",
        "SITE_URL": f"https://{s.domain}", "SECRET_KEY": ref("POSTHOG_SECRET"),
        "ENCRYPTION_SALT_KEYS": ref("POSTHOG_ENCRYPTION_SALT_KEYS"),
        "INTERNAL_API_SECRET": ref("POSTHOG_INTERNAL_API_SECRET"),
        **_object_storage_env(s.domain), **_replay_env(), "SESSION_RECORDING_V2_S3_TIMEOUT_MS": "120000",
        "PERSONHOG_ADDR": "personhog-router:50052", "PERSONHOG_ENABLED": "true",
        "ERROR_TRACKING_CYMBAL_BASE_URL": "http://cymbal:3302", "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    }
    if mode:
        env["PLUGIN_SERVER_MODE"] = mode
    return env


def _ai_blob_env() -> dict[str, str]:
    """ingestion-general's AI event blobs, offloaded to the ai-blobs bucket that objectstorage creates."""
    return {"AI_BLOB_S3_BUCKET": "ai-blobs", "AI_BLOB_S3_ENDPOINT": "http://objectstorage:19000",
            "AI_BLOB_S3_PREFIX": "aio/", "AI_BLOB_S3_REGION": "us-east-1",
            "AI_BLOB_S3_ACCESS_KEY_ID": OBJECT_STORAGE_USER,
            "AI_BLOB_S3_SECRET_ACCESS_KEY": ref("POSTHOG_OBJECT_STORAGE_PASSWORD"), "AI_BLOB_OFFLOAD_TEAMS": "*"}


def _readiness(port: int) -> HealthCheck:
    """The Rust services' readiness endpoint, as upstream's base file checks it."""
    return HealthCheck(test=["CMD", "curl", "-f", f"http://localhost:{port}/_readiness"], interval=5,
                       timeout=5, retries=12, start_period=10)


def _ping(*test: str, interval: float = 3, timeout: float = 10, retries: int = 10, start: float = 0) -> HealthCheck:
    return HealthCheck(test=["CMD-SHELL", " ".join(test)] if len(test) == 1 else ["CMD", *test],
                       interval=interval, timeout=timeout, retries=retries, start_period=start)


def _seaweed_entrypoint(master_port: int, bootstrap: str, ready: dict[str, str]) -> list[str]:
    """SeaweedFS with a background loop that creates buckets (and the access identity) until they exist: until
    every ``weed shell`` command of ``ready`` prints its expected word (upstream's loop: the last bucket in
    ``s3.bucket.list`` and the access key in ``s3.configure``), then it touches the readiness file."""
    shell = f"/usr/bin/weed shell -master=localhost:{master_port}"
    checks = " && ".join(f"echo {command} | {shell} 2>/dev/null | grep -q {word}" for command, word in ready.items())
    script = (f"(until printf \"{bootstrap}\" | {shell} >/dev/null 2>&1 && {checks}; do sleep 1; done; "
              f"touch /tmp/objectstorage-ready) & exec /usr/bin/weed \"$@\"")
    return ["/bin/sh", "-c", script, "--"]


@dataclass(frozen=True)
class Inputs:
    """What the host provides for one client's stack."""

    upstream: Path  # the verified cache of upstream files at the ref
    scripts: Path  # the client's files written by :func:`write_files`
    share: Path  # the host's GeoIP directory, mounted as /share
    node: str  # the posthog-node image (resolved per ref: see node_image.py)
    rust: dict[str, str]  # each Rust image by name (resolved per ref: see rust_images.py)
    limits: Mapping[str, Limits] | None = None  # this client's limits per service (default: limits.DEFAULTS)


def services(s, inputs: Inputs) -> list[Service]:
    up = lambda path: str(inputs.upstream / path)  # noqa: E731 - a bind mount source in the verified cache
    app, node, scripts_dir = s.app, inputs.node, inputs.scripts
    compose = Mount(source=str(scripts_dir), target="/compose", read_only=True)
    share = Mount(source=str(inputs.share), target="/share", read_only=True)
    node_deps = {"db": "started", "redis7": "started", "kafka": "started"}
    node_service = lambda name, mode, deps, env=None, **kw: Service(  # noqa: E731
        name=name, image=node, command=["node", "nodejs/dist/index.js"],  # posthog-node's own CMD
        environment={**node_env(s, mode), **(env or {})}, depends_on={**node_deps, **deps}, restart="on-failure", **kw)
    rust = lambda name, binary, env, deps=None, **kw: Service(  # noqa: E731
        name=name, image=inputs.rust[binary], environment=env, depends_on=deps or {}, restart="on-failure", **kw)
    # upstream's argv exactly: each option and its value are one word, as the base file passes them
    kafka_cmd = ["redpanda", "start", "--kafka-addr internal://0.0.0.0:9092,external://0.0.0.0:19092",
                 "--advertise-kafka-addr internal://kafka:9092,external://localhost:19092",
                 "--pandaproxy-addr internal://0.0.0.0:8082,external://0.0.0.0:18082",
                 "--advertise-pandaproxy-addr internal://kafka:8082,external://localhost:18082",
                 "--schema-registry-addr internal://0.0.0.0:8081,external://0.0.0.0:18081",
                 "--rpc-addr kafka:33145", "--advertise-rpc-addr kafka:33145", "--mode dev-container", "--smp 2",
                 "--memory 3G", "--reserve-memory 500M", "--overprovisioned",
                 "--set redpanda.empty_seed_starts_cluster=false", "--seeds kafka:33145",
                 "--set redpanda.auto_create_topics_enabled=true"]
    topics = ("set -e; until rpk topic list --brokers kafka:9092 >/dev/null 2>&1; do echo waiting for kafka; "
              "sleep 2; done; for topic in $(grep -vE '^[[:space:]]*(#|$)' /topics.txt); do "
              "rpk topic create \"$topic\" --brokers kafka:9092 -p 1 -r 1 >/dev/null 2>&1 "
              "|| rpk topic list --brokers kafka:9092 | awk '{print $1}' | grep -qx \"$topic\" "
              "|| { echo \"cannot create topic $topic\"; exit 1; }; done; echo topics ready")
    object_bootstrap = (f"s3.configure -access_key={OBJECT_STORAGE_USER} -secret_key=$OBJECT_STORAGE_SECRET "
                        "-user=posthog -actions=Admin -apply\\ns3.bucket.create -name posthog\\n"
                        "s3.bucket.create -name ai-blobs\\n")
    rust_pg = {"DATABASE_URL": PG_URL, "KAFKA_HOSTS": "kafka:9092"}
    django = django_env(s)
    return [
        Service(name="db", image=s.image("postgres"), restart="on-failure",
                environment={"POSTGRES_USER": PG_USER, "POSTGRES_DB": PG_DB,
                             "POSTGRES_PASSWORD": ref("POSTHOG_POSTGRES_PASSWORD")},
                volumes=[Mount(source="postgres-data", target="/var/lib/postgresql/data")],
                healthcheck=_ping(f"pg_isready -U {PG_USER}", interval=5, timeout=30, retries=30, start=10)),
        Service(name="redis7", image=s.image("redis"), restart="on-failure",
                command=["redis-server", "--maxmemory-policy", "allkeys-lru", "--maxmemory", "200mb"],
                volumes=[Mount(source="redis7-data", target="/data")],
                healthcheck=_ping("redis-cli", "ping")),
        Service(name="valkey", image=s.image("valkey"), restart="on-failure",
                command=["valkey-server", "--maxmemory-policy", "allkeys-lru", "--maxmemory", "200mb"],
                healthcheck=_ping("valkey-cli", "ping")),
        Service(name="zookeeper", image=s.image("zookeeper"), restart="on-failure",
                environment={"ZOO_AUTOPURGE_PURGEINTERVAL": "1", "ZOO_AUTOPURGE_SNAPRETAINCOUNT": "3"},
                volumes=[Mount(source="zookeeper-datalog", target="/datalog"),
                         Mount(source="zookeeper-data", target="/data"),
                         Mount(source="zookeeper-logs", target="/logs")]),
        Service(name="kafka", image=s.image("redpanda"), restart="on-failure", command=kafka_cmd,
                environment={"ALLOW_PLAINTEXT_LISTENER": "true", "KAFKA_LOG_RETENTION_MS": "3600000",
                             "KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS": "300000", "KAFKA_LOG_RETENTION_HOURS": "1"},
                volumes=[Mount(source="redpanda-data", target="/var/lib/redpanda/data")],
                depends_on={"zookeeper": "started"},
                healthcheck=_ping("curl -f http://localhost:9644/v1/status/ready || exit 1")),
        Service(name="kafka-init", image=s.image("redpanda"), job=True, entrypoint=["/bin/sh"],
                command=["-c", topics], depends_on={"kafka": "healthy"},
                volumes=[Mount(source=up("docker/kafka/topics.txt"), target="/topics.txt", read_only=True)],
                start_timeout=300),
        Service(name="clickhouse", image=s.image("clickhouse"), restart="on-failure",
                environment={"CLICKHOUSE_SKIP_USER_SETUP": "1", "KAFKA_HOSTS": "kafka:9092",
                             "CLICKHOUSE_PASSWORD": ref("POSTHOG_CLICKHOUSE_PASSWORD")},
                depends_on={"kafka": "started", "zookeeper": "started"},
                volumes=[Mount(source=up("posthog/idl"), target="/idl", read_only=True),
                         Mount(source=up("docker/clickhouse/docker-entrypoint-initdb.d"),
                               target="/docker-entrypoint-initdb.d", read_only=True),
                         *(Mount(source=up(f"docker/clickhouse/{f}"), target=f"/etc/clickhouse-server/{f}",
                                 read_only=True)
                           for f in ("config.xml", "config.d/default.xml", "users.xml", "user_defined_function.xml")),
                         Mount(source=str(scripts_dir / "clickhouse-users.xml"),
                               target="/etc/clickhouse-server/users.d/agencystack.xml", read_only=True),
                         Mount(source=str(scripts_dir / "clickhouse-backups.xml"),
                               target="/etc/clickhouse-server/config.d/agencystack-backups.xml", read_only=True),
                         Mount(source=up("posthog/user_scripts"), target="/var/lib/clickhouse/user_scripts",
                               read_only=True),
                         Mount(source="clickhouse-data", target="/var/lib/clickhouse")],
                healthcheck=_ping("wget --no-verbose --tries=1 -O /dev/null http://localhost:8123/ping || exit 1",
                                  interval=5, retries=60)),
        Service(name="objectstorage", image=s.image("seaweedfs"), restart="on-failure",
                entrypoint=_seaweed_entrypoint(19001, object_bootstrap,
                                               {"s3.bucket.list": "ai-blobs", "s3.configure": OBJECT_STORAGE_USER}),
                command=["server", "-master.port=19001", "-s3", "-s3.port=19000", "-dir=/data", "-volume.max=1000",
                         "-master.volumePreallocate=false"],
                environment={"OBJECT_STORAGE_SECRET": ref("POSTHOG_OBJECT_STORAGE_PASSWORD")},
                volumes=[Mount(source="objectstorage-data", target="/data")],
                healthcheck=_ping("test -f /tmp/objectstorage-ready", interval=5, retries=30, start=10)),
        Service(name="seaweedfs", image=s.image("seaweedfs"), restart="on-failure",
                entrypoint=_seaweed_entrypoint(9333, "s3.bucket.create -name posthog\\n",
                                               {"s3.bucket.list": "posthog"}),
                command=["server", "-s3", "-s3.port=8333", "-dir=/data", "-volume.max=1000"],
                volumes=[Mount(source="seaweedfs", target="/data")],
                healthcheck=_ping("sh", "-c", "echo 's3.bucket.list' | /usr/bin/weed shell -master=localhost:9333 2>&1 "
                                  "| grep -q posthog", interval=5, retries=30, start=10)),
        Service(name="migrate", image=app, job=True, environment=django,
                command=["./bin/migrate"],  # upstream's own script, as the image ships it (web runs it at start)
                depends_on={"db": "healthy", "clickhouse": "healthy", "kafka-init": "completed",
                            "redis7": "healthy"},
                start_timeout=45 * 60),  # upstream's installer waits up to 45 minutes on first boot
        Service(name="web", image=app, command=["/compose/start"], restart="on-failure",
                environment={**django, "LIVESTREAM_HOST": f"https://{s.domain}/livestream", "OPT_OUT_CAPTURE": "false",
                             "CSP_REPORT_ENDPOINT": ""},
                volumes=[compose],
                depends_on={"migrate": "completed", "db": "started", "redis7": "started", "clickhouse": "started",
                            "kafka": "started", "objectstorage": "started", "seaweedfs": "started",
                            "personhog-router": "started"},
                start_timeout=45 * 60),
        Service(name="worker", image=app, command=["./bin/docker-worker-celery", "--with-scheduler"],
                restart="on-failure", environment=django,
                depends_on={"migrate": "completed", "db": "healthy", "redis7": "healthy", "clickhouse": "started",
                            "kafka": "healthy", "web": "started", "personhog-router": "started",
                            "browserless": "started"}),
        Service(name="temporal-django-worker", image=app, command=["/compose/temporal-django-worker"],
                restart="on-failure", environment=django, volumes=[compose],
                depends_on={"migrate": "completed", "db": "started", "redis7": "started", "clickhouse": "started",
                            "kafka": "started", "objectstorage": "started", "seaweedfs": "started",
                            "temporal": "started", "browserless": "started", "personhog-router": "started"}),
        node_service("plugins", None, {"valkey": "started", "clickhouse": "started", "objectstorage": "started",
                                       "seaweedfs": "started"}, volumes=[share]),
        node_service("ingestion-general", "ingestion-v2-combined",
                     {"clickhouse": "started", "objectstorage": "started", "personhog-router": "started"},
                     env=_ai_blob_env()),
        node_service("ingestion-sessionreplay", "recordings-blob-ingestion-v2", {"seaweedfs": "started"}),
        node_service("recording-api", "recording-api", {"clickhouse": "started", "seaweedfs": "started"}),
        node_service("ingestion-error-tracking", "ingestion-errortracking", {}),
        node_service("ingestion-logs", "ingestion-logs", {}),
        node_service("ingestion-traces", "ingestion-traces", {}),
        rust("capture", "capture", {"ADDRESS": "0.0.0.0:3000", "KAFKA_TOPIC": "events_plugin_ingestion",
                                    "KAFKA_HOSTS": "kafka:9092", "REDIS_URL": "redis://redis7:6379/",
                                    "CAPTURE_MODE": "events", "RUST_LOG": "info,rdkafka=warn"},
             {"kafka": "started", "redis7": "started"}),
        rust("replay-capture", "capture", {"ADDRESS": "0.0.0.0:3000", "KAFKA_HOSTS": "kafka:9092",
                                           "KAFKA_TOPIC": "session_recording_snapshot_item_events",
                                           "REDIS_URL": "redis://redis7:6379/", "CAPTURE_MODE": "recordings"},
             {"kafka": "started", "redis7": "started"}),
        rust("capture-logs", "capture-logs", {"BIND_HOST": "0.0.0.0", "BIND_PORT": "4318",
                                              "RUST_LOG": "info,rdkafka=warn", "RUST_BACKTRACE": "1",
                                              "KAFKA_HOSTS": "kafka:9092", "KAFKA_TOPIC": "logs_ingestion",
                                              "KAFKA_METRICS_TOPIC": "metrics_ingestion",
                                              "JWT_SECRET": ref("POSTHOG_INTERNAL_API_SECRET")},
             {"kafka": "started"}),
        rust("property-defs-rs", "property-defs-rs", {**rust_pg, "SKIP_WRITES": "false", "SKIP_READS": "false",
                                                      "FILTER_MODE": "opt-out"},
             {"kafka-init": "completed", "db": "healthy"}),
        rust("property-defs-ai", "property-defs-rs", {**rust_pg, "SKIP_WRITES": "false", "SKIP_READS": "false",
                                                      "FILTER_MODE": "opt-out",
                                                      "KAFKA_CONSUMER_TOPIC": "clickhouse_ai_events_json",
                                                      "KAFKA_CONSUMER_GROUP": "property-defs-ai"},
             {"kafka-init": "completed", "db": "healthy"}),
        rust("feature-flags", "feature-flags", {
            "WRITE_DATABASE_URL": PG_URL, "READ_DATABASE_URL": PG_URL, "PERSONS_WRITE_DATABASE_URL": PG_URL,
            "PERSONS_READ_DATABASE_URL": PG_URL, "MAXMIND_DB_PATH": "/share/GeoLite2-City.mmdb",
            "REDIS_URL": "redis://redis7:6379/", "ADDRESS": "0.0.0.0:3001", "RUST_LOG": "info",
            "COOKIELESS_REDIS_HOST": "redis7", "COOKIELESS_REDIS_PORT": "6379",
            "INTERNAL_REQUEST_TOKEN": ref("POSTHOG_INTERNAL_REQUEST_TOKEN")},
             {"db": "started", "redis7": "started"}, volumes=[share], healthcheck=_readiness(3001)),
        rust("hypercache-server", "hypercache-server", {"ADDRESS": "0.0.0.0:3002", "REDIS_URL": "redis://redis7:6379/",
                                                        "RUST_LOG": "info"},
             {"redis7": "started"}, healthcheck=_readiness(3002)),
        rust("personhog-replica", "personhog-replica", {"PRIMARY_DATABASE_URL": PG_URL,
                                                        "GRPC_ADDRESS": "0.0.0.0:50051", "RUST_LOG": "info"},
             {"db": "healthy"}),
        rust("personhog-router", "personhog-router", {"GRPC_ADDRESS": "0.0.0.0:50052", "RUST_LOG": "info",
                                                      "REPLICA_URL": "http://personhog-replica:50051",
                                                      "BACKEND_TIMEOUT_MS": "5000"},
             {"personhog-replica": "started"}),
        rust("cymbal", "cymbal", {
            "KAFKA_HOSTS": "kafka:9092", "OBJECT_STORAGE_BUCKET": "posthog", "OBJECT_STORAGE_ACCESS_KEY_ID": "any",
            "OBJECT_STORAGE_SECRET_ACCESS_KEY": "any", "OBJECT_STORAGE_ENDPOINT": "http://seaweedfs:8333",
            "OBJECT_STORAGE_FORCE_PATH_STYLE": "true", "BIND_HOST": "0.0.0.0", "BIND_PORT": "3302",
            "DATABASE_URL": PG_URL, "PERSONS_URL": PG_URL, "MAXMIND_DB_PATH": "/share/GeoLite2-City.mmdb",
            "REDIS_URL": "redis://redis7:6379/", "ISSUE_BUCKETS_REDIS_URL": "redis://redis7:6379/",
            "RUST_LOG": "info", "CYMBAL_REMOTE_RESOLUTION_HOST": "cymbal-resolution",
            "INTERNAL_API_SECRET": ref("POSTHOG_INTERNAL_API_SECRET")},
             {"kafka-init": "completed", "seaweedfs": "healthy", "db": "healthy", "redis7": "healthy",
              "cymbal-resolution": "started"}, volumes=[share]),
        rust("cymbal-resolution", "cymbal", {
            "CYMBAL_MODE": "resolution", "GRPC_ADDRESS": "0.0.0.0:50061", "OBJECT_STORAGE_BUCKET": "posthog",
            "OBJECT_STORAGE_ACCESS_KEY_ID": "any", "OBJECT_STORAGE_SECRET_ACCESS_KEY": "any",
            "OBJECT_STORAGE_ENDPOINT": "http://seaweedfs:8333", "OBJECT_STORAGE_FORCE_PATH_STYLE": "true",
            "DATABASE_URL": PG_URL, "INTERNAL_API_SECRET": ref("POSTHOG_INTERNAL_API_SECRET"), "RUST_LOG": "info"},
             {"seaweedfs": "healthy", "db": "healthy"}),
        Service(name="livestream", image=s.image("livestream"), restart="on-failure",
                environment={"LIVESTREAM_JWT_SECRET": ref("POSTHOG_SECRET")}, depends_on={"kafka": "started"},
                volumes=[Mount(source=up("docker/livestream/configs-hobby.yml"), target="/configs/configs.yml",
                               read_only=True)]),
        Service(name="browserless", image=s.image("browserless"), restart="on-failure",
                environment={"TOKEN": ref("POSTHOG_SECRET"), "LOG_LEVEL": "warn", "DEBUG": "-*"}),
        Service(name="elasticsearch", image=s.image("elasticsearch"), environment={
                    "cluster.routing.allocation.disk.threshold_enabled": "true",
                    "cluster.routing.allocation.disk.watermark.low": "512mb",
                    "cluster.routing.allocation.disk.watermark.high": "256mb",
                    "cluster.routing.allocation.disk.watermark.flood_stage": "128mb",
                    "discovery.type": "single-node", "ES_JAVA_OPTS": "-Xms256m -Xmx256m",
                    "xpack.security.enabled": "false"},
                healthcheck=_ping('curl -s http://localhost:9200/_cluster/health '
                                  '| grep -qE "\\"status\\":\\"(green|yellow)\\""', interval=10, timeout=10, retries=30,
                                  start=60)),
        Service(name="temporal", image=s.image("temporal"), restart="on-failure", environment={
                    "DB": "postgres12", "DB_PORT": "5432", "POSTGRES_USER": PG_USER,
                    "POSTGRES_PWD": ref("POSTHOG_POSTGRES_PASSWORD"), "POSTGRES_SEEDS": "db",
                    "DYNAMIC_CONFIG_FILE_PATH": "config/dynamicconfig/development-sql.yaml", "ENABLE_ES": "false",
                    "ES_SEEDS": "elasticsearch", "ES_VERSION": "v7"},
                volumes=[Mount(source=up("docker/temporal/dynamicconfig"),
                               target="/etc/temporal/config/dynamicconfig", read_only=True)],
                depends_on={"db": "healthy", "elasticsearch": "healthy"},
                healthcheck=_ping("nc -z $(hostname) 7233", interval=5, timeout=5, retries=30, start=300)),
        Service(name="temporal-admin-tools", image=s.image("temporal_admin_tools"),
                environment={"TEMPORAL_CLI_ADDRESS": "temporal:7233"}, depends_on={"temporal": "started"},
                entrypoint=["/bin/sh"], command=["-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]),
        Service(name="temporal-ui", image=s.image("temporal_ui"), environment={
                    "TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_CORS_ORIGINS": "http://localhost:3000",
                    "TEMPORAL_CSRF_COOKIE_INSECURE": "true", "TEMPORAL_CODEC_ENDPOINT": "http://localhost:8000"},
                depends_on={"temporal": "started", "db": "healthy"}),
    ]


def routes(s) -> list[Route]:
    """Upstream's proxy table: public ingestion paths, exact, above the catch-all to web."""
    host, public = s.domain, dict(public=True, priority=100)
    return [
        Route(name="capture", service="capture", port=3000, host=host, **public,
              prefixes=["/e", "/i/v0", "/batch", "/capture"], paths=["/i/v1/analytics/events"]),
        Route(name="replay", service="replay-capture", port=3000, host=host, prefixes=["/s"], **public),
        Route(name="otel", service="capture-logs", port=4318, host=host, **public,
              prefixes=["/i/v1/logs", "/i/v1/traces", "/i/v1/metrics"]),
        Route(name="flags", service="feature-flags", port=3001, host=host, **public,
              prefixes=["/flags"], paths=["/api/feature_flag/local_evaluation", "/api/feature_flag/local_evaluation/"]),
        Route(name="hypercache", service="hypercache-server", port=3002, host=host, **public,
              paths=["/surveys", "/surveys/", "/api/surveys", "/api/surveys/"], prefixes=["/array"]),
        Route(name="webhooks", service="plugins", port=6738, host=host, **public,
              prefixes=["/public/webhooks", "/public/m"]),
        Route(name="livestream", service="livestream", port=8080, host=host, prefixes=["/livestream"],
              strip_prefix=True, **public),  # web's LIVESTREAM_HOST is <site>/livestream; livestream serves /events
        Route(name="objects", service="objectstorage", port=19000, host=host, prefixes=["/posthog"], **public),
        # the health probe (status, install) answers without login; everything else on the host is the UI
        Route(name="health", service="web", port=s.port, host=host, paths=["/_health"], **public),
        Route(name="web", service="web", port=s.port, host=host, priority=10, sso=True),
    ]


def backups() -> list:
    """Postgres (PostHog's and Temporal's databases), ClickHouse (native BACKUP, streamed), the object stores, .env."""
    password = "POSTHOG_POSTGRES_PASSWORD"
    dump = ("set -e; f=agencystack-$$.zip; clickhouse-client --password \"$POSTHOG_CLICKHOUSE_PASSWORD\" --query "
            "\"BACKUP DATABASE posthog TO Disk('backups', '$f')\" >/dev/null; "
            "cat /var/lib/clickhouse/backups/$f; rm -f /var/lib/clickhouse/backups/$f")
    load = ("set -e; f=agencystack-restore-$$.zip; cat > /var/lib/clickhouse/backups/$f; "
            "clickhouse-client --password \"$POSTHOG_CLICKHOUSE_PASSWORD\" --query 'DROP DATABASE IF EXISTS posthog SYNC'; "
            "clickhouse-client --password \"$POSTHOG_CLICKHOUSE_PASSWORD\" --query "
            "\"RESTORE DATABASE posthog FROM Disk('backups', '$f')\" >/dev/null; rm -f /var/lib/clickhouse/backups/$f")
    return [
        PostgresDump(name="postgres", service="db", user=PG_USER, database=PG_DB, password_key=password),
        PostgresDump(name="temporal", service="db", user=PG_USER, database="temporal", password_key=password),
        PostgresDump(name="temporal-visibility", service="db", user=PG_USER, database="temporal_visibility",
                     password_key=password),
        CommandDump(name="clickhouse", service="clickhouse", dump=["sh", "-c", dump], load=["sh", "-c", load],
                    env_keys=["POSTHOG_CLICKHOUSE_PASSWORD"]),
        VolumeArchive(name="objectstorage", volume="objectstorage-data"),
        VolumeArchive(name="seaweedfs", volume="seaweedfs"),
        EnvFile(),
    ]


def build(s, inputs: Inputs) -> Stack:
    """The stack for one client, with its resource limits (limits.py: an addition to upstream, kept apart)."""
    from agencystack_posthog import limits

    listed = services(s, inputs)
    limits.apply(listed, limits.DEFAULTS if inputs.limits is None else inputs.limits)
    return Stack(services=listed, volumes=[Volume(name=v) for v in VOLUMES],
                 routes=routes(s), backups=backups(), probes=[HttpProbe(url=f"https://{s.domain}/_health", wait=HEALTH_WAIT, interval=3)])


def write_files(scripts_dir: Path) -> bool:
    """Write the start scripts and ClickHouse overrides (no secrets in them); True if anything changed."""
    files = {**SCRIPTS, "clickhouse-users.xml": CLICKHOUSE_USERS, "clickhouse-backups.xml": CLICKHOUSE_BACKUPS}
    scripts_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    changed = False
    for name, text in files.items():
        path = scripts_dir / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed = True
        path.chmod(0o755 if name in SCRIPTS else 0o644)
    return changed
