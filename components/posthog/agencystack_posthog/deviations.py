"""Every intentional difference between this project's PostHog stack and upstream's hobby deployment, with its reason.

``tests/test_posthog_conformance.py`` loads upstream's own files (``tests/data/posthog-upstream``: the hobby file at
``POSTHOG_UPSTREAM_REF``, the closest base file found, each noted with its commit) and the compose file this project
renders, compares them service by service, and fails on any difference no row here explains, and on any row that
explains nothing any more. Bumping ``POSTHOG_UPSTREAM_REF`` is: vendor the new files, run that test, resolve each
difference (match upstream, or add a row with its reason).

A row names services, an aspect and keys, each a space-separated list of shell patterns (``*`` matches anything).
Aspects: ``service`` (present on one side only), ``base`` (the vendored base copy lacks the service: only what the
hobby file says of it is compared), ``image`` (name without tag or mirror), ``command``, ``entrypoint``,
``env-missing`` (upstream sets it, we do not), ``env-extra`` (we set it, upstream does not), ``env-value``,
``mount`` (by container path), ``depends_on``, ``healthcheck`` (by field), ``ports``, ``resources`` (compose
``deploy.resources`` / ``mem_limit`` / ``cpus``) and ``route`` (service ``proxy``; keys are Caddy path patterns).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

DJANGO = "web worker temporal-django-worker"
NODE = "plugins ingestion-general ingestion-sessionreplay ingestion-error-tracking ingestion-logs ingestion-traces " \
       "recording-api"
RUST_PG = "cymbal cymbal-resolution feature-flags personhog-replica property-defs-rs property-defs-ai"
PG_URLS = ("DATABASE_URL PERSONS_DATABASE_URL BEHAVIORAL_COHORTS_DATABASE_URL PRIMARY_DATABASE_URL PERSONS_URL "
           "*_DATABASE_URL")
GENERATED = ("Upstream hard-codes the Postgres, ClickHouse and object storage passwords (posthog, an empty one, "
             "object_storage_root_password); we generate them per client and give every consumer the same value "
             "through ${KEY} references")
BASE_OLDER = ("The vendored base file is the newest copy found, and older than the ref; the reference notes "
              "(shared/reference/posthog-hobby.md) and PostHog's source at newer commits give the newer fact")


@dataclass(frozen=True)
class Deviation:
    services: str
    aspect: str
    keys: str
    reason: str

    def covers(self, service: str, aspect: str, key: str) -> bool:
        return (aspect == self.aspect
                and any(fnmatch.fnmatchcase(service, p) for p in self.services.split())
                and (any(fnmatch.fnmatchcase(key, p) for p in self.keys.split()) if self.keys else key == ""))


#: rows of this aspect may explain nothing yet (limits are added per service as they are measured)
OPTIONAL_ASPECTS = ("resources",)

DEVIATIONS: tuple[Deviation, ...] = (
    # -- the shape of the stack -------------------------------------------------------------------------------------
    Deviation("proxy", "service", "", "No Caddy: the host's edge (Traefik) routes upstream's path table "
              "(stack.routes), public ingestion paths matched exactly and above the catch-all to web"),
    Deviation("asyncmigrationscheck", "service", "", "Upstream declares it with 0 replicas (it never runs on up); "
              "upstream's bin/migrate, run by the migrate job, runs the same check"),
    Deviation("migrate", "service", "", "Migrations run once as a job (upstream's web runs ./bin/migrate in its "
              "start script while worker and the Temporal worker race it); web, worker and the Temporal worker "
              "wait for it to complete"),
    Deviation(DJANGO, "depends_on", "migrate", "They start after the migrate job completed (see migrate)"),
    Deviation("valkey personhog-replica personhog-router hypercache-server", "base", "",
              BASE_OLDER + ": these services are not in it, so only what the hobby file says of them is compared"),
    Deviation("*", "ports", "", "Nothing is published on the host (upstream publishes object storage, SeaweedFS, "
              "Temporal and its UI on loopback); the operator reaches them with docker exec"),
    Deviation("*", "resources", "", "Per-service memory/CPU limits (upstream sets none): sized per service so one "
              "runaway process cannot take the host down"),
    Deviation("kafka", "command", "", "Redpanda's --memory and --reserve-memory follow kafka's memory limit "
              "(POSTHOG_KAFKA_MEMORY, default 768 MiB: 576M and 192M; see limits.redpanda_memory) instead of "
              "upstream's 3G and 500M, which a container limited below 3 GiB could not hold; every other word is "
              "upstream's"),
    # -- generated secrets ------------------------------------------------------------------------------------------
    Deviation("*", "env-value", PG_URLS + " POSTGRES_PASSWORD POSTGRES_PWD OBJECT_STORAGE_SECRET_ACCESS_KEY",
              GENERATED),
    Deviation("clickhouse " + DJANGO + " " + NODE, "env-extra", "CLICKHOUSE_PASSWORD CLICKHOUSE_API_PASSWORD "
              "CLICKHOUSE_APP_PASSWORD CLICKHOUSE_LOGS_CLUSTER_PASSWORD", GENERATED + "; ClickHouse reads it from a "
              "users.d override (stack.CLICKHOUSE_USERS)"),
    Deviation("objectstorage", "env-extra", "OBJECT_STORAGE_SECRET", GENERATED + "; the bucket loop reads it from "
              "the environment instead of a literal"),
    Deviation(DJANGO + " cymbal cymbal-resolution recording-api", "env-value", "INTERNAL_API_SECRET",
              "Upstream defaults it to POSTHOG_SECRET; we generate it separately (POSTHOG_INTERNAL_API_SECRET), the "
              "same value for every service that sends or checks it"),
    Deviation("capture-logs", "env-value", "JWT_SECRET", "Upstream's base ships a placeholder; capture-logs gets the "
              "generated internal API secret"),
    Deviation(DJANGO + " feature-flags", "env-extra", "INTERNAL_REQUEST_TOKEN", "Django and feature-flags "
              "authenticate each other with a generated token (upstream leaves it at its default)"),
    # -- environment the base copy does not show --------------------------------------------------------------------
    Deviation(DJANGO, "env-extra", "DATABASE_URL PGHOST PGUSER PGPASSWORD CLICKHOUSE_HOST CLICKHOUSE_DATABASE "
              "CLICKHOUSE_SECURE CLICKHOUSE_VERIFY CLICKHOUSE_API_USER CLICKHOUSE_APP_USER REDIS_URL "
              "DISABLE_SECURE_SSL_REDIRECT IS_BEHIND_PROXY", "Upstream's base worker env sets these; the vendored "
              "copy moved them to env_file: dev-services.env (a development file, not vendored). PostHog's own "
              "older base copy (a62d71f8) sets them inline with these values"),
    Deviation(DJANGO, "env-extra", "BROWSERLESS_* HEATMAP_BROWSERLESS_* TEMPORAL_HOST OTEL_SERVICE_NAME "
              "OTEL_EXPORTER_OTLP_ENDPOINT POSTHOG_SKIP_MIGRATION_CHECKS ENCRYPTION_SALT_KEYS OBJECT_STORAGE_* "
              "SESSION_RECORDING_V2_S3_* SESSION_RECORDING_V2_METADATA_SWITCHOVER",
              "One Django environment for web, worker, the Temporal worker and migrate: the union of what upstream "
              "gives each of them, so every Django process (and the migrations) sees the same settings"),
    Deviation(DJANGO + " " + NODE, "env-extra", "SESSION_RECORDING_V2_METADATA_SWITCHOVER",
              "Generated once per client (an RFC 3339 time) and never moved, as upstream's installer writes it"),
    Deviation(NODE, "env-extra", "*", "One environment for every posthog-node service (stack.node_env: upstream's "
              "plugins env plus the hobby overrides): each PLUGIN_SERVER_MODE reads only its own keys, so a key a "
              "mode does not read is inert, and no mode misses one a newer image starts to need"),
    Deviation("capture-logs", "env-extra", "KAFKA_METRICS_TOPIC", BASE_OLDER + " (capture-logs' metrics topic)"),
    # -- commands, images, mounts ----------------------------------------------------------------------------------
    Deviation("kafka-init", "command", "", "The same steps (wait for the broker, create each topic of upstream's "
              "topics.txt, accept existing ones) in one quieter shell line"),
    Deviation("kafka-init", "image", "", "The same Redpanda image as kafka (POSTHOG_REDPANDA_IMAGE): upstream names "
              "it through docker.io here and docker.redpanda.com for kafka"),
    Deviation("objectstorage", "image", "", BASE_OLDER + ": the base copy still runs MinIO; the hobby file at the "
              "ref runs SeaweedFS on the same endpoint (its entrypoint calls /usr/bin/weed)"),
    Deviation("objectstorage", "command", "", BASE_OLDER + ": SeaweedFS' server with S3 on :19000 and the master "
              "on :19001, where the hobby entrypoint's loop reaches it"),
    Deviation("objectstorage", "entrypoint", "", "Upstream's loop (configure the posthog identity, create the "
              "posthog and ai-blobs buckets, ready once both buckets and the identity exist) in one line, the "
              "secret read from the environment"),
    Deviation("objectstorage", "env-missing", "MINIO_ROOT_USER MINIO_ROOT_PASSWORD", BASE_OLDER + ": MinIO's "
              "variables; SeaweedFS does not read them"),
    Deviation("objectstorage", "healthcheck", "*", "Healthy once upstream's loop touched /tmp/objectstorage-ready, "
              "so services can wait for the buckets and the identity"),
    Deviation("seaweedfs", "command", "", BASE_OLDER + " (-volume.max=1000)"),
    Deviation("seaweedfs", "entrypoint", "", "The bucket loop in the form objectstorage's uses (create until "
              "listed), which also marks readiness; the base copy's loop only creates the bucket"),
    *(Deviation("temporal-admin-tools", aspect, "", "Kept idle without a TTY (upstream keeps its shell open with "
                "stdin_open/tty); the operator runs tctl/temporal with docker exec") for aspect in ("command",
                                                                                                  "entrypoint")),
    Deviation("clickhouse", "healthcheck", "test interval retries", "Same ping, fetched to /dev/null; checked for "
              "5 minutes (upstream: 30 s) because first start with upstream's init takes longer, and migrate "
              "waits for it to be healthy"),
    Deviation("clickhouse", "mount", "/etc/clickhouse-server/users.d/agencystack.xml "
              "/etc/clickhouse-server/config.d/agencystack-backups.xml", "Our own overrides beside upstream's "
              "files: the generated password for upstream's users, and a local disk for native BACKUP"),
    Deviation("web temporal-django-worker", "mount", "/compose", "Our start scripts (stack.SCRIPTS, written per "
              "client): wait for the databases, then serve; migrations ran in the migrate job"),
    Deviation("plugins feature-flags cymbal", "mount", "/share", "The host's GeoIP directory (shared by every "
              "client, refreshed by geoip.py) instead of ./share"),
    Deviation("db", "mount", "/docker-entrypoint-initdb.d /products", "Upstream's base mounts "
              "./docker/postgres-init-scripts and ./products relative to itself; upstream's installer copies the "
              "base file into the deploy directory (bin/hobby-installer/core/git.go, CopyComposeFiles), where "
              "neither exists (the checkout is ./posthog), so upstream's hobby Postgres runs no init script. Ours "
              "runs none either; tests/test_posthog_postgres_engine.py shows the first start still leaves every "
              "database the services name, and Temporal's auto-setup able to create its own"),
    Deviation("kafka", "mount", "/bitnami/kafka", "The hobby file keeps the old Bitnami Kafka data path; Redpanda "
              "keeps its data in /var/lib/redpanda/data (the redpanda-data volume, mounted)"),
    Deviation("elasticsearch", "mount", "/var/lib/elasticsearch/data", "No anonymous volume: Temporal runs with "
              "ENABLE_ES=false, so Elasticsearch holds nothing worth keeping"),
    Deviation("capture replay-capture capture-logs recording-api", "depends_on", "kafka redis7",
              "Start order only: they connect to Kafka (and Redis) at start"),
    # -- the proxy table --------------------------------------------------------------------------------------------
    Deviation("proxy", "route", "/i/v0/ai /i/v0/ai/ /i/v0/ai/*", "An older proxy sent AI events to a capture-ai "
              "service; the hobby file at the ref has none, so /i/v0/* (AI events included) goes to capture"),
    Deviation("proxy", "route", "/surveys /surveys/ /api/surveys /api/surveys/ /array /array/ /array/*",
              BASE_OLDER + ": surveys and the remote config arrays are served by hypercache-server, which the "
              "hobby file at the ref runs"),
    Deviation("proxy", "route", "/api/feature_flag/local_evaluation /api/feature_flag/local_evaluation/",
              BASE_OLDER + ": local evaluation is served by feature-flags"),
    Deviation("proxy", "route", "/i/v1/analytics/events /i/v1/metrics /i/v1/metrics/ /i/v1/metrics/*",
              BASE_OLDER + ": analytics events go to capture, OTLP metrics to capture-logs"),
    Deviation("proxy", "route", "/_health", "A route of its own to web, public: the UI's catch-all is behind the "
              "client's SSO gate (Keycloak), and install/status probe /_health through the edge without a login"),
    Deviation("proxy", "route", "/public/m", "A prefix route matches the bare path as well (upstream: /public/m/ "
              "and below); the bare path reaches plugins instead of web"),
)


def explain(service: str, aspect: str, key: str) -> Deviation | None:
    """The row that explains this difference, if any."""
    return next((row for row in DEVIATIONS if row.covers(service, aspect, key)), None)
