#!/usr/bin/env python3
"""``agencystack backup`` and ``restore`` of a ~1 GB Postgres database against the fair peers, same data, same run.

On the real engine ($DOCKER_HOST, default the test engine; images from tests/images/build.py):

1. a throwaway component ``benchdb`` (one Postgres service from agencystack-test/postgres:15, a PostgresDump part
   and the .env) is pip-installed into a temporary directory and installed for client ``bench`` under a temporary
   AGENCYSTACK_ROOT; a table is filled with generate_series to ~1 GB (pg_database_size): random hex text
   (compresses ~2x) and repeated text (compresses well); a warm-up ``pg_dump > /dev/null`` for the page cache;
2. **backup**, each side a process as an operator runs it, in rounds whose order rotates:
   ``docker exec db pg_dump | zstd -3 > file`` (the same compressor and level as our archive's parts),
   ``docker exec db pg_dump -Fc > file`` (pg_dump's own compressed format), and
   ``agencystack backup benchdb -c bench`` in a child Python that records its RSS once everything the command
   uses is imported and reports its peak (VmHWM): growth = peak - before;
3. **restore** of what each wrote, into the same database, dropped and created again for the peers
   (``zstd -dc file | docker exec -i db psql --single-transaction``, ``docker exec -i db pg_restore
   --single-transaction``) and by ``agencystack restore benchdb -c bench --from ARCHIVE`` (which loads into a
   scratch database while the archive is hashed beside it, then swaps it in and starts the component again,
   health-gated); the row count is checked
   after each.

Targets: backup time <= the faster peer's / 0.95 (throughput >= 0.95x), RSS growth <= 50 MB, restore time <= the
faster peer's / 0.9. Prints the figures side by side with the load average and ends with ONE JSON line.
Options: --size-gb (default 1), --rounds (default 1), --keep (leave containers and files).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
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
TARGETS = {"backup": 0.95, "rss_growth_mb": 50, "restore": 1.0}
PEERS_BACKUP = {"pg_dump | zstd -3": "sql.zst", "pg_dump -Fc": "dump"}
PEERS_RESTORE = {"pg_dump | zstd -3": "zstd -dc | psql --single-transaction",
                 "pg_dump -Fc": "pg_restore --single-transaction"}

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
    import json, sys, time

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
    import rich.console, zstandard, dotenv, docker, pydantic_settings, agencystack_benchdb
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
    if isinstance(cmd, str):
        cmd = ["bash", "-o", "pipefail", "-c", cmd]
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def timed(cmd: list[str] | str, **kw) -> float:
    started = time.monotonic()
    sh(cmd, **kw)
    return time.monotonic() - started


def psql(sql: str, database: str = "bench") -> str:
    return sh(["docker", "exec", DB_CONTAINER, "psql", "-X", "-q", "-At", "-U", "bench", "-d", database,
               "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout.strip()


def recreate_database() -> None:
    """What a peer's restore starts from, as ours does: the database dropped and created again, empty."""
    psql("DROP DATABASE IF EXISTS bench WITH (FORCE)", "postgres")
    psql("CREATE DATABASE bench OWNER bench TEMPLATE template0", "postgres")


def wait_for_postgres() -> None:
    for _ in range(480):  # the image's first boot restarts the server once: wait for the real one (TCP)
        if subprocess.run(["docker", "exec", DB_CONTAINER, "pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
            return
        time.sleep(0.5)
    raise SystemExit("Postgres did not come up")


def mb(n: float) -> float:
    return round(n / 1e6, 1)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from tests.engine.helpers import engine_host
    from tests.images.build import ensure_images

    os.environ.setdefault("DOCKER_HOST", engine_host())
    ensure_images(only=["postgres"])
    for tool in ("docker", "zstd"):
        if shutil.which(tool) is None:
            print(f"bench/backup.py needs {tool} on PATH for the peers (apt-get install -y {tool})", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="agencystack-bench-backup-"))
    site, root, dest, peers_dir = work / "site", work / "root", work / "archives", work / "peers"
    src = work / "src"
    (src / "agencystack_benchdb").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "agencystack_benchdb" / "__init__.py").write_text(PLUGIN)
    sh([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-build-isolation", "--target", str(site), str(src)])
    env = dict(os.environ, AGENCYSTACK_ROOT=str(root), AGENCYSTACK_LOG_DIR=str(work / "log"),
               AGENCYSTACK_PLUGINS=COMPONENT, XDG_CACHE_HOME=str(work / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), str(REPO), os.environ.get("PYTHONPATH")])))
    script = Path(sys.executable).parent / "agencystack"
    cli = [str(script)] if script.exists() else [sys.executable, "-c", "from agencystack.cli import run; run()"]
    started_load = load()
    try:
        sh([*cli, "install", COMPONENT, "--client-id", CLIENT, "--json"], env=env)
        wait_for_postgres()
        t = time.monotonic()
        rows = int(args.size_gb * 4_300_000)
        psql("CREATE TABLE big (id bigint PRIMARY KEY, a text, b text, n double precision)")
        batch = 1_000_000
        for start in range(1, rows + 1, batch):
            psql(f"INSERT INTO big SELECT g, md5(random()::text) || md5(random()::text), repeat(md5(g::text), 3), "
                 f"random() FROM generate_series({start}, {min(rows, start + batch - 1)}) g")
        psql("VACUUM ANALYZE big")
        db_size = int(psql("SELECT pg_database_size('bench')"))
        print(f"generated {rows} rows, database {mb(db_size)} MB in {time.monotonic() - t:.1f}s", file=sys.stderr)
        dump = f"docker exec {DB_CONTAINER} pg_dump -U bench -d bench --no-owner"
        sh(f"{dump} > /dev/null")  # warm-up: every side meets the same page cache
        raw_size = int(sh(f"{dump} | wc -c").stdout)
        dest.mkdir(mode=0o700)
        peers_dir.mkdir()

        # -- backup ----------------------------------------------------------------------------------------------
        backup_s: dict[str, list[float]] = {name: [] for name in [*PEERS_BACKUP, "agencystack"]}
        sizes: dict[str, int] = {}
        rss: list[dict] = []
        archive = ""
        sides = list(backup_s)
        for round_ in range(args.rounds):
            for name in sides[round_ % len(sides):] + sides[:round_ % len(sides)]:  # rotate who goes first
                if name == "agencystack":
                    t = time.monotonic()
                    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(
                        ["backup", COMPONENT, "--client-id", CLIENT, "--dest", str(dest), "--keep-last", "1",
                         "--json"])], env=env, text=True, capture_output=True)
                    backup_s[name].append(time.monotonic() - t)
                    if child.returncode != 0:
                        print(child.stderr, file=sys.stderr)
                        raise SystemExit(f"agencystack backup failed (exit {child.returncode})")
                    rss.append(json.loads(child.stderr.strip().splitlines()[-1]))
                    result = json.loads(child.stdout)
                    archive, sizes[name] = result["archive"], result["size"]
                else:
                    target = peers_dir / f"peer.{PEERS_BACKUP[name]}"
                    command = (f"{dump} | zstd -3 -q -f -o {shlex.quote(str(target))}" if name.endswith("zstd -3")
                               else f"{dump} -Fc > {shlex.quote(str(target))}")
                    backup_s[name].append(timed(command))
                    sizes[name] = target.stat().st_size
            print(f"  backup round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in backup_s.items())
                  + f"  load {load()}", file=sys.stderr)

        # -- restore ---------------------------------------------------------------------------------------------
        restore_s: dict[str, list[float]] = {name: [] for name in [*PEERS_RESTORE, "agencystack"]}
        for round_ in range(args.rounds):
            for name in sides[round_ % len(sides):] + sides[:round_ % len(sides)]:
                if name == "agencystack":
                    restore_s[name].append(timed([*cli, "restore", COMPONENT, "--client-id", CLIENT, "--from",
                                                  archive, "--json"], env=env))
                    wait_for_postgres()
                else:
                    target = peers_dir / f"peer.{PEERS_BACKUP[name]}"
                    load_cmd = (f"zstd -dc {shlex.quote(str(target))} | docker exec -i {DB_CONTAINER} psql -X -q "
                                f"-v ON_ERROR_STOP=1 --single-transaction -U bench -d bench"
                                if name.endswith("zstd -3") else
                                f"docker exec -i {DB_CONTAINER} pg_restore -U bench -d bench --no-owner "
                                f"--exit-on-error --single-transaction < {shlex.quote(str(target))}")
                    started = time.monotonic()
                    recreate_database()  # (timed as part of the restore, as ours drops and creates it too)
                    sh(load_cmd)
                    restore_s[name].append(time.monotonic() - started)
                count = int(psql("SELECT count(*) FROM big"))
                if count != rows:
                    raise SystemExit(f"restore by {name} left {count} rows, not {rows}")
            print(f"  restore round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in restore_s.items())
                  + f"  load {load()}", file=sys.stderr)

        med = {k: statistics.median(v) for k, v in backup_s.items()}
        rmed = {k: statistics.median(v) for k, v in restore_s.items()}
        fastest = min(PEERS_BACKUP, key=lambda k: med[k])
        rfastest = min(PEERS_RESTORE, key=lambda k: rmed[k])
        growth = max(r["rss_peak"] - r["rss_before"] for r in rss)
        backup_ratio = med[fastest] / med["agencystack"]
        restore_ratio = rmed[rfastest] / rmed["agencystack"]
        figures = {
            "backup": {"ours": "agencystack backup", "ours_s": round(med["agencystack"], 2),
                       "peers_s": {k: round(med[k], 2) for k in PEERS_BACKUP}, "peer": fastest,
                       "peer_s": round(med[fastest], 2), "ratio": round(backup_ratio, 3),
                       "target": TARGETS["backup"], "met": backup_ratio >= TARGETS["backup"],
                       "samples_s": {k: [round(x, 2) for x in v] for k, v in backup_s.items()},
                       "bytes": sizes, "ours_mb_per_s": mb(raw_size / med["agencystack"])},
            "rss_growth_mb": {"ours": "agencystack backup (peak RSS - RSS once imported)", "value": mb(growth),
                              "peak_mb": mb(max(r["rss_peak"] for r in rss)), "peer": None,
                              "target": TARGETS["rss_growth_mb"], "met": growth <= TARGETS["rss_growth_mb"] * 1e6},
            "restore": {"ours": "agencystack restore", "ours_s": round(rmed["agencystack"], 2),
                        "peers_s": {PEERS_RESTORE[k]: round(rmed[k], 2) for k in PEERS_RESTORE},
                        "peer": PEERS_RESTORE[rfastest], "peer_s": round(rmed[rfastest], 2),
                        "ratio": round(restore_ratio, 3), "target": TARGETS["restore"],
                        "met": restore_ratio >= TARGETS["restore"],
                        "samples_s": {PEERS_RESTORE.get(k, "agencystack restore"): [round(x, 2) for x in v]
                                      for k, v in restore_s.items()}},
        }
        ended_load = load()
        print(f"\n{'':34}{'seconds':>9}{'output MB':>11}")
        for name in backup_s:
            print(f"{'backup: ' + name:34}{med[name]:>9.2f}{mb(sizes[name]):>11}")
        for name in restore_s:
            label = PEERS_RESTORE.get(name, "agencystack restore")
            print(f"{'restore: ' + label:34}{rmed[name]:>9.2f}")
        print(f"backup throughput vs {fastest}: {backup_ratio:.3f} (target >= {TARGETS['backup']}) "
              f"{'met' if figures['backup']['met'] else 'NOT MET'}")
        print(f"RSS growth of the backup process: {mb(growth)} MB (target <= {TARGETS['rss_growth_mb']}) "
              f"{'met' if figures['rss_growth_mb']['met'] else 'NOT MET'}")
        print(f"restore throughput vs {PEERS_RESTORE[rfastest]}: {restore_ratio:.3f} (target >= "
              f"{TARGETS['restore']}) {'met' if figures['restore']['met'] else 'NOT MET'}")
        print(f"database {mb(db_size)} MB, dump {mb(raw_size)} MB, {rows} rows, {os.cpu_count()} CPUs; load average "
              f"{started_load} at the start, {ended_load} at the end")
        met = all(f["met"] for f in figures.values())
        print(json.dumps({"bench": "backup", "rounds": args.rounds, "all_targets_met": met, "figures": figures,
                          "database_bytes": db_size, "dump_bytes": raw_size, "rows": rows, "cpus": os.cpu_count(),
                          "load_average": {"start": started_load, "end": ended_load}}))
        return 0  # a target not met is a figure, printed as such; only a failure to measure is an error
    finally:
        if not args.keep:
            subprocess.run([*cli, "uninstall", COMPONENT, "--client-id", CLIENT, "--purge", "--yes"], env=env,
                           capture_output=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
