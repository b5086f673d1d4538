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
* While Keycloak restarts the auth host answers ``503`` with a short page and ``Retry-After``
  (:data:`RETRY_AFTER`), never the edge's redirect to HTTPS (a dead address for a development host) or a ``502``:
  the ``retry`` service (busybox ``httpd``, a few MB) serves that page. Its route on the auth host sits below
  Keycloak's (:data:`RETRY_PRIORITY`, above the edge's redirect), so it answers while the edge has no route to
  Keycloak (stopped, or starting and not yet healthy); an ``errors`` middleware on Keycloak's routes answers the same
  page, as a ``503``, for the 500-504 of a container that is stopping or has lost its database. That middleware
  reaches the page by the ``retry`` container's name, so Keycloak's routes never depend on it running. The default
  restart order (the database and ``retry`` before Keycloak) keeps the page up whenever Keycloak is down.
"""

from __future__ import annotations

from agencystack import (EnvFile, HealthCheck, Limits, Mount, PostgresDump, Route, Service, Stack, Volume,
                         postgres_healthcheck, ref)

HTTP_PORT, MANAGEMENT_PORT = 8080, 9000
NOT_ROUTED = "/agencystack/not-routed"  # no such Keycloak path: Keycloak's own 404
RETRY_PORT = 8080
RETRY_PATH = "/cgi-bin/retry"  # the page's CGI: status 503, Retry-After, the page (every path is rewritten to it)
RETRY_AFTER = 5  # seconds, what the page and its Retry-After header say
#: below Keycloak's routes (catch-all 10, paths 100), above the edge's HTTP->HTTPS redirect (1)
RETRY_PRIORITY = 5
#: Keycloak's answers the page replaces: 500 (its database restarting), 502-504 (the edge cannot reach it)
RETRY_STATUSES = "500-504"
RETRY_PAGE = ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
              f"<meta http-equiv=refresh content={RETRY_AFTER}><title>Signing in is restarting</title>"
              "<body style='font-family:sans-serif;max-width:32rem;margin:4rem auto'>"
              "<h1>Signing in is restarting</h1>"
              f"<p>The sign-in service is restarting. This page retries in {RETRY_AFTER} seconds.</p></html>")


def container(project: str, service: str = "keycloak") -> str:
    """The container name (compose's ``<project>-<service>-1``): how other stacks on the edge network reach it."""
    return f"{project}-{service}-1"


#: Keycloak's documented 2 GB, split: the JVM sizes its heap from the container's limit (Quarkus: 70% of it).
#: Overridable per client: KEYCLOAK_KEYCLOAK_MEMORY, KEYCLOAK_DB_MEMORY, ..._CPUS, ..._PIDS.
LIMITS = {
    "keycloak": Limits(memory="1536m", memory_reservation="768m", cpus=1, pids=1024, min_memory="768m"),
    "db": Limits(memory="512m", memory_reservation="128m", cpus=0.5, pids=512, min_memory="128m"),
    "retry": Limits(memory="16m", memory_reservation="8m", cpus=0.1, pids=64, min_memory="8m"),
}


def retry_command() -> list[str]:
    """busybox httpd serving :data:`RETRY_PAGE` at :data:`RETRY_PATH` (a CGI, the only way busybox httpd answers a
    status of its choosing and a header) and ``/ok`` (its health check). No ``$`` anywhere: nothing to escape."""
    cgi = ("#!/bin/sh\n"
           f"printf 'HTTP/1.1 503 Service Unavailable\\r\\nRetry-After: {RETRY_AFTER}\\r\\n"
           "Content-Type: text/html; charset=utf-8\\r\\nCache-Control: no-store\\r\\n\\r\\n'\n"
           f"cat <<'PAGE'\n{RETRY_PAGE}\nPAGE\n")
    script = (f"mkdir -p /www/cgi-bin && printf 'ok\\n' > /www/ok && cat > /www{RETRY_PATH} <<'CGI'\n{cgi}CGI\n"
              f"chmod 0755 /www{RETRY_PATH} && exec httpd -f -p {RETRY_PORT} -h /www")
    return ["sh", "-c", script]


def retry_service(settings) -> Service:
    """The page Keycloak's auth host answers while Keycloak restarts (see the module's docstring)."""
    return Service(
        name="retry",
        image=settings.retry_image,
        command=retry_command(),
        init=True,  # httpd as PID 1 would ignore SIGTERM: every stop would wait for the kill
        healthcheck=HealthCheck(test=["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{RETRY_PORT}/ok"],
                                interval=5, retries=12),
        start_timeout=60,
        stop_grace_period=5,
        limits=LIMITS["retry"],
    )


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
    retry = retry_service(settings)
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
        services=[db, retry, keycloak],
        volumes=[Volume(name="postgres-data")],
        routes=routes(settings, client, keycloak, retry),
        backups=[PostgresDump(name="postgres", service="db", user="keycloak", database="keycloak",
                              password_key="KEYCLOAK_DB_PASSWORD"), EnvFile()],
    )


def routes(settings, client: str, keycloak: Service, retry: Service) -> list[Route]:
    """Keycloak's routes on its public host: all of it with ``KEYCLOAK_ADMIN_PUBLIC``; otherwise the client's realm
    and the static resources, and a catch-all below them that Keycloak answers 404 (see the module's docstring).
    Below them all, the retry page's route; on Keycloak's, the errors middleware that answers that page."""
    host = settings.domain
    restarting, page, rewrite = (f"{client}-keycloak-restarting", f"{client}-keycloak-retry-page",
                                 f"{client}-keycloak-retry-path")
    project = f"{client}_keycloak"
    errors = f"traefik.http.middlewares.{restarting}.errors"
    keycloak.labels = {
        **keycloak.labels,
        f"{errors}.status": RETRY_STATUSES,
        f"{errors}.statusRewrites.{RETRY_STATUSES}": "503",
        f"{errors}.service": page,
        f"{errors}.query": RETRY_PATH,
        # by name, not the retry container's own labels: a middleware whose service is missing takes the routes
        # that use it down with it
        f"traefik.http.services.{page}.loadbalancer.server.url": f"http://{container(project, 'retry')}:{RETRY_PORT}",
    }
    retry.labels = {**retry.labels, f"traefik.http.middlewares.{rewrite}.replacepath.path": RETRY_PATH}
    fallback = Route(name="retry", service=retry.name, port=RETRY_PORT, host=host, public=True,
                     priority=RETRY_PRIORITY, middlewares=[rewrite])
    if settings.admin_public:
        return [Route(name="keycloak", service="keycloak", port=HTTP_PORT, host=host, public=True,
                      middlewares=[restarting]), fallback]
    closed = f"{client}-keycloak-not-routed"
    keycloak.labels = {**keycloak.labels, f"traefik.http.middlewares.{closed}.replacepath.path": NOT_ROUTED}
    return [Route(name="keycloak", service="keycloak", port=HTTP_PORT, host=host, public=True,
                  prefixes=[f"/realms/{settings.realm_name(client)}", "/resources"], middlewares=[restarting]),
            Route(name="not-routed", service="keycloak", port=HTTP_PORT, host=host, public=True,
                  middlewares=[restarting, closed]), fallback]
