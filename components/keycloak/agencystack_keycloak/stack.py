"""Keycloak's stack: Keycloak in production mode behind the edge, with its own Postgres."""

from __future__ import annotations

from agencystack import HealthCheck, Limits, Mount, Route, Service, Stack, Volume, postgres_healthcheck, ref
from agencystack.stack import PostgresDump, EnvFile


#: Keycloak's documented 2 GB, split: the JVM sizes its heap from the container's limit (Quarkus: 70% of it).
#: Overridable per client: KEYCLOAK_KEYCLOAK_MEMORY, KEYCLOAK_DB_MEMORY, ..._CPUS, ..._PIDS.
LIMITS = {
    "keycloak": Limits(memory="1536m", memory_reservation="768m", cpus=1, pids=1024, min_memory="768m"),
    "db": Limits(memory="512m", memory_reservation="128m", cpus=0.5, pids=512, min_memory="128m"),
}


def build(settings, client: str) -> Stack:
    db = Service(
        name="db",
        image=settings.postgres_image,
        environment={"POSTGRES_USER": "keycloak", "POSTGRES_DB": "keycloak",
                     "POSTGRES_PASSWORD": ref("KEYCLOAK_DB_PASSWORD")},
        volumes=[Mount(source="postgres-data", target="/var/lib/postgresql/data")],
        healthcheck=postgres_healthcheck("keycloak", "keycloak"),  # over TCP: ready for Keycloak's first start
        limits=LIMITS["db"],
    )
    keycloak = Service(
        name="keycloak",
        image=settings.image,
        command=["start"],
        environment={
            "KC_DB": "postgres",
            "KC_DB_URL": "jdbc:postgresql://db:5432/keycloak",
            "KC_DB_USERNAME": "keycloak",
            "KC_DB_PASSWORD": ref("KEYCLOAK_DB_PASSWORD"),
            "KC_HOSTNAME": f"https://{settings.domain}",
            "KC_HTTP_ENABLED": "true",
            "KC_PROXY_HEADERS": "xforwarded",
            "KC_HEALTH_ENABLED": "true",
            "KC_BOOTSTRAP_ADMIN_USERNAME": settings.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ref("KEYCLOAK_ADMIN_PASSWORD"),
        },
        depends_on={"db": "healthy"},
        healthcheck=HealthCheck(
            test=["CMD-SHELL", "exec 3<>/dev/tcp/127.0.0.1/9000 && printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3"
                  " && grep -q UP <&3"],
            interval=10, retries=30, start_period=30),
        limits=LIMITS["keycloak"],
    )
    return Stack(
        services=[db, keycloak],
        volumes=[Volume(name="postgres-data")],
        routes=[Route(name="keycloak", service="keycloak", port=8080, host=settings.domain, public=True)],
        backups=[PostgresDump(name="postgres", service="db", user="keycloak", database="keycloak",
                              password_key="KEYCLOAK_DB_PASSWORD"), EnvFile()],
    )
