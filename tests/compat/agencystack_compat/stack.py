# FROZEN COMPATIBILITY FIXTURE (plugin API 1.0.0, 2026-11-27): never edited to follow the code; only a major
# plugin API version may drop it, with an entry in CHANGELOG.md ("Plugin API").
"""What runs for one client: Postgres, a migrate job, busybox's httpd behind the edge; backups; a probe."""

from __future__ import annotations

from agencystack import (EnvFile, HealthCheck, HttpProbe, Limits, Mount, PostgresDump, Route, Service, Stack,
                         Volume, VolumeArchive, postgres_healthcheck, ref)

DB = "compat"


def build(s) -> Stack:
    login = {"PGHOST": "db", "PGUSER": DB, "PGDATABASE": DB, "PGPASSWORD": ref("COMPAT_DB_PASSWORD")}
    return Stack(
        services=[
            Service(name="db", image=s.db_image, stop_grace_period=5,
                    environment={"POSTGRES_USER": DB, "POSTGRES_DB": DB, "POSTGRES_PASSWORD": ref("COMPAT_DB_PASSWORD")},
                    volumes=[Mount(source="db-data", target="/var/lib/postgresql/data")],
                    healthcheck=postgres_healthcheck(DB, DB, interval=1, retries=120),
                    limits=Limits(memory="512m")),
            Service(name="migrate", image=s.db_image, job=True, environment=login, start_timeout=120,
                    command=["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                             "CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)"],
                    depends_on={"db": "healthy"}),
            Service(name="web", image=s.web_image, init=True, stop_grace_period=2,
                    command=["sh", "-c", "mkdir -p /data/www && echo Compat > /data/www/index.html && "
                                         "exec httpd -f -p 8080 -h /data/www"],
                    volumes=[Mount(source="data", target="/data")],
                    healthcheck=HealthCheck(test=["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
                                            interval=1, retries=60),
                    depends_on={"migrate": "completed"},
                    limits=Limits(memory="64m")),
        ],
        volumes=[Volume(name="db-data"), Volume(name="data")],
        routes=[Route(name="web", service="web", port=8080, host=s.domain)],
        backups=[PostgresDump(name="db", service="db", user=DB, database=DB, password_key="COMPAT_DB_PASSWORD"),
                 VolumeArchive(name="data", volume="data"),
                 EnvFile()],
        probes=[HttpProbe(url=f"https://{s.domain}/", wait=120, interval=1)],
    )
