#!/usr/bin/env python3
"""Benchmark: agencystack's backup of a ~1 GB Postgres database against ``docker exec pg_dump | gzip``.

One run, on the real engine (``eval "$(bash tests/engine/start-engine.sh)"``; images from tests/images/build.py):

1. a throwaway component ``benchdb`` (one Postgres service from agencystack-test/postgres:15, a PostgresDump part
   and the .env) is pip-installed into a temporary directory and installed for client ``bench`` under a temporary
   AGENCYSTACK_ROOT;
2. a table is filled with generate_series to ~1 GB (pg_database_size): random hex text (compresses ~2x) and
   repeated text (compresses well);
3. a warm-up ``pg_dump > /dev/null`` (so neither side gets a colder cache), then the peer:
   ``docker exec <db> pg_dump -U bench -d bench | gzip > file``, timed;
4. ``agencystack backup benchdb --client-id bench --dest DIR --json`` in a child Python process that imports
   everything the command needs, records its RSS, runs the CLI's ``main`` and reports its peak RSS (VmHWM):
   growth = peak - before (target <= 50 MB); throughput relative to the peer (target >= 0.9x);
5. the archive is verified (``backup verify``) and timed too.

Prints the figures side by side and ends with ONE JSON line. Options: --size-gb, --zstd-level, --zstd-threads
(profiling: they patch the archive writer's defaults in the child), --keep (leave containers and files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

COMPONENT = "benchdb"
CLIENT = "bench"
PROJECT = f"{CLIENT}_{COMPONENT}"
DB_CONTAINER = f"{PROJECT}-db-1"

PLUGIN = '''
from agencystack import hookimpl
from agencystack.component import Component


@hookimpl
def components():
    return [Component(name="benchdb", description="Postgres for bench/backup.py",
                      settings="agencystack_benchdb:settings_model")]


def settings_model():
    from agencystack.settings import ComponentSettings, generated_secret, hex_token
    from pydantic_settings import SettingsConfigDict

    class BenchSettings(ComponentSettings):
        model_config = SettingsConfigDict(env_prefix="BENCHDB_", extra="forbid")
        db_password: generated_secret(hex_token, 24) = None
        image: str = "agencystack-test/postgres:15"

    return BenchSettings


@hookimpl
def stack(context):
    from agencystack import Mount, Service, Stack, Volume, postgres_healthcheck, ref
    from agencystack.stack import EnvFile, PostgresDump

    db = Service(name="db", image=context.settings.image,
                 command=["postgres", "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB",
                          "-c", "synchronous_commit=off"],
                 environment={"POSTGRES_USER": "bench", "POSTGRES_DB": "bench",
                              "POSTGRES_PASSWORD": ref("BENCHDB_DB_PASSWORD")},
                 volumes=[Mount(source="pgdata", target="/var/lib/postgresql/data")],
                 healthcheck=postgres_healthcheck("bench", "bench", interval=1, retries=120))
    return Stack(services=[db], volumes=[Volume(name="pgdata")],
                 backups=[PostgresDump(name="db", service="db", user="bench", database="bench",
                                       password_key="BENCHDB_DB_PASSWORD"), EnvFile()])
'''

PYPROJECT = '''
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "agencystack-benchdb"
version = "1.0.0"
dependencies = ["agencystack"]

[project.entry-points."agencystack.components"]
benchdb = "agencystack_benchdb"

[tool.hatch.build.targets.wheel]
packages = ["agencystack_benchdb"]
'''

# The child: import what the backup command uses, note RSS, run the CLI, report peak RSS.
CHILD = textwrap.dedent('''
    import json, os, sys, time

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    import agencystack.cli, agencystack.settings, agencystack.context, agencystack.logging, agencystack.lifecycle
    import agencystack.engine.docker, agencystack.backup.archive, agencystack.backup.crypto
    import agencystack.backup.files, agencystack.backup.parts, agencystack.backup.operations
    import agencystack.plugins, agencystack.cli.progress
    import structlog, rich.console, zstandard, dotenv, docker, pydantic_settings, agencystack_benchdb
    from agencystack.backup import archive
    level, threads = os.environ.get("BENCH_ZSTD_LEVEL"), os.environ.get("BENCH_ZSTD_THREADS")
    if level: archive.DEFAULT_LEVEL = int(level)
    if threads is not None: archive.DEFAULT_THREADS = int(threads)
    argv = json.loads(sys.argv[1])
    before = status("VmRSS")
    started = time.monotonic()
    code = agencystack.cli.main(argv)
    seconds = time.monotonic() - started
    sys.stderr.write(json.dumps({"code": code, "rss_before": before, "rss_peak": status("VmHWM"),
                                 "seconds": seconds}) + "\\n")
    sys.exit(code)
''')


def sh(cmd: list[str] | str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, shell=isinstance(cmd, str), **kw)


def psql(sql: str) -> str:
    return sh(["docker", "exec", DB_CONTAINER, "psql", "-X", "-q", "-At", "-U", "bench", "-d", "bench",
               "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout.strip()


def archive_defaults() -> tuple[int, int]:
    from agencystack.backup import archive

    return archive.DEFAULT_LEVEL, archive.DEFAULT_THREADS


def mb(n: float) -> float:
    return round(n / 1e6, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--zstd-level", type=int)
    parser.add_argument("--zstd-threads", type=int)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from tests.engine.helpers import engine_host
    from tests.images.build import ensure_images

    os.environ.setdefault("DOCKER_HOST", engine_host())
    ensure_images()
    work = Path(tempfile.mkdtemp(prefix="agencystack-bench-backup-"))
    site, root, dest = work / "site", work / "root", work / "archives"
    src = work / "src"
    (src / "agencystack_benchdb").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "agencystack_benchdb" / "__init__.py").write_text(PLUGIN)
    sh([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-build-isolation", "--target", str(site), str(src)])
    env = dict(os.environ, AGENCYSTACK_ROOT=str(root), AGENCYSTACK_LOG_DIR=str(work / "log"),
               AGENCYSTACK_PLUGINS=COMPONENT, PYTHONPATH=os.pathsep.join(filter(None, [str(site), str(REPO),
                                                                                      os.environ.get("PYTHONPATH")])))
    if args.zstd_level:
        env["BENCH_ZSTD_LEVEL"] = str(args.zstd_level)
    if args.zstd_threads is not None:
        env["BENCH_ZSTD_THREADS"] = str(args.zstd_threads)
    cli = [sys.executable, "-c", "from agencystack.cli import run; run()"]
    try:
        sh([*cli, "install", COMPONENT, "--client-id", CLIENT, "--json"], env=env)
        for _ in range(240):  # the image's first boot restarts the server once: wait for the real one (TCP)
            if subprocess.run(["docker", "exec", DB_CONTAINER, "pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
                break
            time.sleep(0.5)
        t = time.monotonic()
        rows = int(args.size_gb * 4_300_000)
        psql("CREATE TABLE big (id bigint PRIMARY KEY, a text, b text, n double precision)")
        batch = 1_000_000
        for start in range(1, rows + 1, batch):
            psql(f"INSERT INTO big SELECT g, md5(random()::text) || md5(random()::text), repeat(md5(g::text), 3), "
                 f"random() FROM generate_series({start}, {min(rows, start + batch - 1)}) g")
        psql("VACUUM ANALYZE big")
        db_size = int(psql("SELECT pg_database_size('bench')"))
        generate_s = time.monotonic() - t
        print(f"generated {rows} rows, database {mb(db_size)} MB in {generate_s:.1f}s", file=sys.stderr)

        sh(f"docker exec {DB_CONTAINER} pg_dump -U bench -d bench > /dev/null")  # warm-up, both sides alike
        raw_size = int(sh(f"docker exec {DB_CONTAINER} sh -c 'pg_dump -U bench -d bench | wc -c'").stdout)

        dest.mkdir(mode=0o700)
        t = time.monotonic()
        sh(f"docker exec {DB_CONTAINER} pg_dump -U bench -d bench | gzip > {dest / 'peer.sql.gz'}")
        peer_s = time.monotonic() - t
        peer_size = (dest / "peer.sql.gz").stat().st_size
        (dest / "peer.sql.gz").unlink()

        t = time.monotonic()
        child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(
            ["backup", COMPONENT, "--client-id", CLIENT, "--dest", str(dest), "--json"])],
            env=env, text=True, capture_output=True)
        ours_wall = time.monotonic() - t
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            raise SystemExit(f"agencystack backup failed (exit {child.returncode})")
        stats = json.loads(child.stderr.strip().splitlines()[-1])
        result = json.loads(child.stdout)
        archive_size = result["size"]

        t = time.monotonic()
        sh([*cli, "backup", "verify", result["archive"], "--json"], env=env)
        verify_s = time.monotonic() - t

        growth = stats["rss_peak"] - stats["rss_before"]
        figures = {
            "database_bytes": db_size, "dump_bytes": raw_size, "rows": rows,
            "peer_seconds": round(peer_s, 2), "peer_bytes": peer_size,
            "peer_mb_per_s": mb(raw_size / peer_s),
            "agencystack_seconds": round(ours_wall, 2), "agencystack_backup_seconds": round(stats["seconds"], 2),
            "agencystack_bytes": archive_size, "agencystack_mb_per_s": mb(raw_size / ours_wall),
            "throughput_ratio": round(peer_s / ours_wall, 3),
            "rss_before_mb": mb(stats["rss_before"]), "rss_peak_mb": mb(stats["rss_peak"]),
            "rss_growth_mb": mb(growth), "verify_seconds": round(verify_s, 2),
            "verify_mb_per_s": mb(raw_size / verify_s),
            "zstd_level": args.zstd_level or archive_defaults()[0],
            "zstd_threads": args.zstd_threads if args.zstd_threads is not None else archive_defaults()[1],
            "cpus": os.cpu_count(),
            "targets_met": growth <= 50e6 and peer_s / ours_wall >= 0.9,
        }
        print(f"{'':28}{'pg_dump | gzip':>18}{'agencystack backup':>22}")
        print(f"{'seconds (wall)':28}{figures['peer_seconds']:>18}{figures['agencystack_seconds']:>22}")
        print(f"{'MB/s of dump text':28}{figures['peer_mb_per_s']:>18}{figures['agencystack_mb_per_s']:>22}")
        print(f"{'output MB':28}{mb(peer_size):>18}{mb(archive_size):>22}")
        print(f"{'throughput vs peer':28}{'1.0':>18}{figures['throughput_ratio']:>22}   (target >= 0.9)")
        print(f"{'RSS growth MB':28}{'-':>18}{figures['rss_growth_mb']:>22}   (target <= 50; "
              f"peak {figures['rss_peak_mb']} MB)")
        print(f"{'verify seconds':28}{'-':>18}{figures['verify_seconds']:>22}")
        print(f"database {mb(db_size)} MB, dump {mb(raw_size)} MB, {rows} rows, {os.cpu_count()} CPUs")
        print(json.dumps(figures))
        return 0 if figures["targets_met"] else 1
    finally:
        if not args.keep:
            subprocess.run([*cli, "uninstall", COMPONENT, "--client-id", CLIENT, "--purge", "--yes"], env=env,
                           capture_output=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
