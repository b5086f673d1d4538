"""Keycloak's stack: Keycloak in production mode behind the edge, with its own Postgres.

* ``KC_HOSTNAME`` is the full public URL as the edge serves it (scheme and published port), so every URL Keycloak
  issues -- the token's ``iss`` above all -- is the one browsers see; ``KC_PROXY_HEADERS=xforwarded`` because the
  edge terminates TLS.
* Health lives on the management port 9000, probed from inside the container (bash /dev/tcp: the image has no
  curl); only 8080 is routed, so ``/health`` and ``/metrics`` are never public.
* ``KC_CACHE=local``: one Keycloak per client, no cluster to join (a restarted container does not wait for stale
  cluster members).
* Secrets (admin and database passwords) are ``${KEY}`` references resolved into the container's environment only.
* The public auth host routes the client's realm (``/realms/<realm>/...``: login, tokens, account) and the static
  ``/resources/`` only; every other path there (``/admin/...``, ``/realms/master``, other realms, ``/``) reaches
  Keycloak rewritten to a path it answers 404 for -- the admin console, the admin REST API and the master realm
  are not public unless ``KEYCLOAK_ADMIN_PUBLIC=true``. A positive list, so that no spelling of an admin path
  (case, encoding, ``//``, ``..``) can slip past a deny rule.
"""

from __future__ import annotations

from agencystack import (EnvFile, HealthCheck, Limits, Mount, PostgresDump, Route, Service, Stack, Volume,
                         postgres_healthcheck, ref)

HTTP_PORT, MANAGEMENT_PORT = 8080, 9000
NOT_ROUTED = "/agencystack/not-routed"  # no such Keycloak path: Keycloak's own 404


def container(project: str, service: str = "keycloak") -> str:
    """The container name (compose's ``<project>-<service>-1``): how other stacks on the edge network reach it."""
    return f"{project}-{service}-1"


#: Keycloak's documented 2 GB, split: the JVM sizes its heap from the container's limit (Quarkus: 70% of it).
#: Overridable per client: KEYCLOAK_KEYCLOAK_MEMORY, KEYCLOAK_DB_MEMORY, ..._CPUS, ..._PIDS.
LIMITS = {
    "keycloak": Limits(memory="1536m", memory_reservation="768m", cpus=1, pids=1024, min_memory="768m"),
    "db": Limits(memory="512m", memory_reservation="128m", cpus=0.5, pids=512, min_memory="128m"),
}


def build(settings, client: str, public_url: str) -> Stack:
    db = Service(
        name="db",
        image=settings.postgres_image,
        environment={"POSTGRES_USER": "keycloak", "POSTGRES_DB": "keycloak",
                     "POSTGRES_PASSWORD": ref("KEYCLOAK_DB_PASSWORD")},
        volumes=[Mount(source="postgres-data", target="/var/lib/postgresql/data")],
        # over TCP: ready for Keycloak's first start (see postgres_healthcheck)
        healthcheck=postgres_healthcheck("keycloak", "keycloak", timeout=10, start_period=settings.start_timeout),
        start_timeout=settings.start_timeout,
        limits=LIMITS["db"],
    )
    keycloak = Service(
        name="keycloak",
        image=settings.image,
        command=["start", "--optimized"] if settings.optimized else ["start"],
        environment={
            "KC_DB": "postgres",
            "KC_DB_URL": "jdbc:postgresql://db:5432/keycloak",
            "KC_DB_USERNAME": "keycloak",
            "KC_DB_PASSWORD": ref("KEYCLOAK_DB_PASSWORD"),
            "KC_HOSTNAME": public_url,
            "KC_HTTP_ENABLED": "true",
            "KC_PROXY_HEADERS": "xforwarded",
            "KC_HEALTH_ENABLED": "true",
            "KC_CACHE": "local",
            "KC_BOOTSTRAP_ADMIN_USERNAME": settings.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ref("KEYCLOAK_ADMIN_PASSWORD"),
        },
        depends_on={"db": "healthy"},
        healthcheck=HealthCheck(
            test=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{MANAGEMENT_PORT} && "
                  "printf 'GET /health/ready HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && "
                  "[[ $status == *' 200 '* ]]"],  # 503 while DOWN; the body names checks that are UP even then
            # failures during the start period do not count: a slow first boot is not "unhealthy"
            interval=3, retries=20, start_period=settings.start_timeout),
        start_timeout=settings.start_timeout,
        stop_grace_period=20,
        limits=LIMITS["keycloak"],
    )
    return Stack(
        services=[db, keycloak],
        volumes=[Volume(name="postgres-data")],
        routes=routes(settings, client, keycloak),
        backups=[PostgresDump(name="postgres", service="db", user="keycloak", database="keycloak",
                              password_key="KEYCLOAK_DB_PASSWORD"), EnvFile()],
    )


def routes(settings, client: str, keycloak: Service) -> list[Route]:
    """Keycloak's routes on its public host: all of it with ``KEYCLOAK_ADMIN_PUBLIC``; otherwise the client's realm
    and the static resources, and a catch-all below them that Keycloak answers 404 (see the module's docstring)."""
    host = settings.domain
    if settings.admin_public:
        return [Route(name="keycloak", service="keycloak", port=HTTP_PORT, host=host, public=True)]
    closed = f"{client}-keycloak-not-routed"
    keycloak.labels = {**keycloak.labels, f"traefik.http.middlewares.{closed}.replacepath.path": NOT_ROUTED}
    return [Route(name="keycloak", service="keycloak", port=HTTP_PORT, host=host, public=True,
                  prefixes=[f"/realms/{settings.realm_name(client)}", "/resources"]),
            Route(name="not-routed", service="keycloak", port=HTTP_PORT, host=host, public=True,
                  middlewares=[closed])]
