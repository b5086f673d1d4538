"""Backup and restore on the real engine, through the real CLI (subprocesses), with real Postgres and Redis.

The fixture component ``backupdemo`` (tests/fixtures/backupdemo, pip-installed once per module) runs Postgres,
Redis and a busybox file store from the local test images and declares one backup part of each kind. The module
shares one client ``acme`` with data written while the backup runs; tests then destroy, damage, clone and
restore, and the last one scans everything the commands printed or logged for secrets.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.engine.helpers import wait_until
from tests.helpers import cli_process, process_env

pytestmark = pytest.mark.engine

FIXTURE = Path(__file__).parent / "fixtures" / "backupdemo"
COMPONENT = "backupdemo"
KEY_TEXT = "c2VjcmV0LWJhY2t1cC1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OQ=="
ACCOUNTS = 100


class Bed:
    """The module's state: where things live, every CLI output (for the secret scan), helpers."""

    def __init__(self, work: Path, site: Path, run_id: str, docker_client):
        self.work, self.site, self.docker = work, site, docker_client
        self.root, self.logs, self.dest = work / "root", work / "log", work / "archives"
        suffix = hashlib.sha256(run_id.encode()).hexdigest()[:6]
        self.acme, self.beta = f"bk{suffix}-acme", f"bk{suffix}-beta"
        self.outputs: list[str] = []
        self.key = work / "backup.key"
        self.key.write_text(KEY_TEXT + "\n")
        self.key.chmod(0o600)
        self.env = process_env(self.root, pythonpath=[site, Path(__file__).parent.parent],
                               AGENCYSTACK_PLUGINS=COMPONENT)

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        return cli_process(*args, env=self.env, expect=expect, outputs=self.outputs)

    def container(self, client: str, service: str):
        return self.docker.containers.get(f"{client}_{COMPONENT}-{service}-1")

    def exec(self, client: str, service: str, cmd: list[str]) -> str:
        code, out = self.container(client, service).exec_run(cmd)
        text = out.decode("utf-8", "replace")
        assert code == 0, f"{cmd}: exit {code}: {text}"
        return text.strip()

    def psql(self, client: str, sql: str) -> str:
        return self.exec(client, "db", ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", "demo", "-d", "demo",
                                        "-c", sql])

    def env_file(self, client: str) -> Path:
        return self.root / "clients" / client / COMPONENT / ".env"

    def settings(self, client: str) -> dict[str, str]:
        pairs = (line.split("=", 1) for line in self.env_file(client).read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
        return {k: v.strip("'") for k, v in pairs}

    def fingerprint(self, client: str) -> dict[str, str]:
        """What the data is: static content checksums in Postgres, Redis and the file store."""
        return {
            "items": self.psql(client, "SELECT count(*) || ':' || md5(string_agg(id || ':' || body, ',' ORDER BY id)) "
                                       "FROM items"),
            "redis": hashlib.sha256(self.exec(client, "cache", ["redis-cli", "mget", *[f"k{i}" for i in range(50)]])
                                    .encode()).hexdigest(),
            "files": self.exec(client, "app", ["sh", "-c", "cd /srv/files && find . -type f | sort | xargs md5sum"]),
        }

    def ledger_consistent(self, client: str) -> tuple[int, int]:
        """(ledger rows, accounts whose balance disagrees with the ledger); the sum of balances never changes."""
        total = int(self.psql(client, "SELECT sum(balance) FROM accounts"))
        assert total == ACCOUNTS * 100
        rows = int(self.psql(client, "SELECT count(*) FROM ledger"))
        wrong = int(self.psql(client, "SELECT count(*) FROM accounts a WHERE balance <> 100 "
                                      "- (SELECT count(*) FROM ledger WHERE src = a.id) "
                                      "+ (SELECT count(*) FROM ledger WHERE dst = a.id)"))
        return rows, wrong

    def volumes(self, client: str) -> list[str]:
        return sorted(v.name for v in self.docker.volumes.list(
            filters={"label": f"com.docker.compose.project={client}_{COMPONENT}"}))

    def archives(self) -> list[Path]:
        return sorted(self.dest.iterdir()) if self.dest.exists() else []


@pytest.fixture(scope="module")
def bed(docker_client, images, engine_run_id, tmp_path_factory):
    work = tmp_path_factory.mktemp("backup-engine")
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(FIXTURE)], check=True, capture_output=True)
    bed = Bed(work, site, engine_run_id, docker_client)
    yield bed
    for client in (bed.acme, bed.beta):
        bed.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes", expect=None)
        for name in bed.volumes(client):
            docker_client.volumes.get(name).remove(force=True)


@pytest.fixture(scope="module")
def acme(bed):
    """acme installed, data written, and a backup taken WHILE a writer moves money between accounts."""
    bed.cli("install", COMPONENT, "-c", bed.acme, "--domain", "acme.example.test")
    wait_until(lambda: bed.container(bed.acme, "db").exec_run(
        ["pg_isready", "-q", "-h", "127.0.0.1"]).exit_code == 0, 120, 0.5, "postgres accepting TCP connections")
    bed.psql(bed.acme, "CREATE TABLE items (id serial PRIMARY KEY, body text NOT NULL); "
                       "INSERT INTO items (body) SELECT md5(g::text) || repeat(md5(random()::text), 4) "
                       "FROM generate_series(1, 200000) g; "
                       f"CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL); "
                       f"INSERT INTO accounts SELECT g, 100 FROM generate_series(1, {ACCOUNTS}) g; "
                       "CREATE TABLE ledger (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL)")
    bed.exec(bed.acme, "cache", ["sh", "-c", "for i in $(seq 0 49); do redis-cli set k$i v$i-$RANDOM >/dev/null; "
                                             "done; redis-cli save"])
    bed.exec(bed.acme, "app", ["sh", "-c", "mkdir -p /srv/files/sub && echo hello > /srv/files/a.txt && "
                                           "head -c 200000 /dev/urandom > /srv/files/sub/blob.bin"])
    static = bed.fingerprint(bed.acme)

    transfers = ("DO $$ DECLARE a int; b int; BEGIN FOR i IN 1..200000 LOOP "
                 f"a := 1 + floor(random() * {ACCOUNTS})::int; b := 1 + floor(random() * {ACCOUNTS})::int; "
                 "UPDATE accounts SET balance = balance - 1 WHERE id = a; "
                 "UPDATE accounts SET balance = balance + 1 WHERE id = b; "
                 "INSERT INTO ledger (src, dst) VALUES (a, b); COMMIT; END LOOP; END $$")
    writer = threading.Thread(target=lambda: bed.container(bed.acme, "db").exec_run(
        ["psql", "-X", "-q", "-U", "demo", "-d", "demo", "-c", transfers]), daemon=True)
    writer.start()
    wait_until(lambda: int(bed.psql(bed.acme, "SELECT count(*) FROM ledger")) > 200, 60, 0.2, "the writer writes")
    before = int(bed.psql(bed.acme, "SELECT count(*) FROM ledger"))
    done = bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(bed.dest), "--json")
    after = int(bed.psql(bed.acme, "SELECT count(*) FROM ledger"))
    bed.psql(bed.acme, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'DO $$%' "
                       "AND pid <> pg_backend_pid()")
    writer.join(60)
    result = json.loads(done.stdout)
    return {"archive": Path(result["archive"]), "result": result, "static": static, "ledger": (before, after),
            "env": bed.env_file(bed.acme).read_bytes()}


def test_archive_is_complete_private_and_verifies(bed, acme):
    archive, result = acme["archive"], acme["result"]
    assert archive.parent == bed.dest and archive.name.startswith(f"{COMPONENT}_{bed.acme}_")
    assert oct(archive.stat().st_mode & 0o777) == "0o600" and oct(bed.dest.stat().st_mode & 0o777) == "0o700"
    assert [p["name"] for p in result["parts"]] == ["db", "redis", "files", "env"]
    assert not [p for p in bed.dest.iterdir() if p.name.endswith(".partial")]
    report = json.loads(bed.cli("backup", "verify", str(archive), "--json").stdout)
    assert report["ok"] and report["component"] == COMPONENT and report["client"] == bed.acme
    assert report["component_version"] == "1.0.0" and set(report["images"]) == {"db", "app", "cache"}
    listed = json.loads(bed.cli("backup", "list", COMPONENT, "-c", bed.acme, "--dest", str(bed.dest), "--json").stdout)
    assert [e["archive"] for e in listed] == [str(archive)]


def test_purge_then_restore_gives_back_the_same_data_consistent_as_of_the_backup(bed, acme):
    bed.cli("uninstall", COMPONENT, "-c", bed.acme, "--purge", "--yes")
    assert bed.volumes(bed.acme) == [] and not bed.env_file(bed.acme).exists()

    bed.cli("restore", COMPONENT, "-c", bed.acme, "--from", str(acme["archive"]))
    assert bed.fingerprint(bed.acme) == acme["static"]
    rows, wrong = bed.ledger_consistent(bed.acme)
    assert wrong == 0, "the dump is not one consistent snapshot"
    before, after = acme["ledger"]
    assert before <= rows <= after, (before, rows, after)
    assert bed.env_file(bed.acme).read_bytes() == acme["env"]
    assert oct(bed.env_file(bed.acme).stat().st_mode & 0o777) == "0o600"
    status = json.loads(bed.cli("status", COMPONENT, "-c", bed.acme, "--json").stdout)
    assert [s["state"] for s in status] == ["running"], status


def test_restore_into_another_client_is_an_independent_clone(bed, acme):
    done = bed.cli("restore", COMPONENT, "-c", bed.beta, "--from", str(acme["archive"]), "--json")
    outcome = json.loads(done.stdout)
    assert outcome["details"]["cloned_from"] == bed.acme
    assert bed.fingerprint(bed.beta) == acme["static"]
    assert bed.ledger_consistent(bed.beta)[1] == 0

    mine, theirs = bed.settings(bed.beta), bed.settings(bed.acme)
    assert mine["BACKUPDEMO_APP_SECRET"] == theirs["BACKUPDEMO_APP_SECRET"]  # data-bound secrets carry over
    assert mine["BACKUPDEMO_DB_PASSWORD"] != theirs["BACKUPDEMO_DB_PASSWORD"]  # credentials do not
    assert theirs["BACKUPDEMO_DOMAIN"] == "acme.example.test" and "BACKUPDEMO_DOMAIN" not in mine
    assert "acme.example.test" not in bed.env_file(bed.beta).read_text()

    bed.psql(bed.acme, "INSERT INTO items (body) VALUES ('only in acme')")
    bed.exec(bed.beta, "cache", ["redis-cli", "set", "k1", "only-in-beta"])
    bed.exec(bed.beta, "app", ["sh", "-c", "echo beta > /srv/files/a.txt"])
    assert bed.psql(bed.beta, "SELECT count(*) FROM items WHERE body = 'only in acme'") == "0"
    assert bed.exec(bed.acme, "cache", ["redis-cli", "get", "k1"]) != "only-in-beta"
    assert bed.exec(bed.acme, "app", ["cat", "/srv/files/a.txt"]) == "hello"
    assert not set(bed.volumes(bed.acme)) & set(bed.volumes(bed.beta))


def _flip(src: Path, dst: Path, at: int) -> Path:
    data = bytearray(src.read_bytes())
    data[at] ^= 0x20
    dst.write_bytes(bytes(data))
    return dst


def _state(bed, client: str) -> dict:
    containers = {s: bed.container(client, s).attrs for s in ("db", "cache", "app")}
    return {"containers": {s: (a["Id"], a["State"]["StartedAt"], a["State"]["Status"]) for s, a in containers.items()},
            "env": bed.env_file(client).read_bytes(),
            "marker": bed.psql(client, "SELECT count(*) FROM items WHERE body = 'only in acme'"),
            "k1": bed.exec(client, "cache", ["redis-cli", "get", "k1"])}


def test_a_damaged_or_truncated_archive_is_rejected_before_any_change(bed, acme, tmp_path):
    from agencystack.backup.archive import open_archive

    with open_archive(acme["archive"]) as reader:
        parts = {p.name: p for p in reader.parts}
    size = acme["archive"].stat().st_size
    bad = {f"part {name}": _flip(acme["archive"], tmp_path / f"flip-{name}.agsb", p.offset + p.size // 2)
           for name, p in parts.items()}
    bad["manifest"] = _flip(acme["archive"], tmp_path / "flip-manifest.agsb", size - 100)
    truncated = tmp_path / "truncated.agsb"
    truncated.write_bytes(acme["archive"].read_bytes()[:size // 2])
    bad["truncated"] = truncated

    before = _state(bed, bed.acme)
    for what, path in bad.items():
        verify = bed.cli("backup", "verify", str(path), expect=5)
        assert verify.stderr.strip().startswith("error: "), what
        restore = bed.cli("restore", COMPONENT, "-c", bed.acme, "--from", str(path), expect=5)
        assert [line for line in restore.stderr.splitlines() if line.startswith("error: ")], what
    assert _state(bed, bed.acme) == before


def test_encrypted_backup_round_trip_and_wrong_key(bed, acme, tmp_path):
    done = bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(tmp_path), "--encrypt-key-file", str(bed.key),
                   "--json")
    archive = Path(json.loads(done.stdout)["archive"])
    assert archive.name.endswith(".agsb.enc") and b"BACKUPDEMO" not in archive.read_bytes()
    bed.cli("backup", "verify", str(archive), "--key-file", str(bed.key))
    bed.cli("backup", "verify", str(archive), expect=2)
    plain = bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(tmp_path / "plain"))  # as a person runs it
    assert "archive written" not in plain.stderr and "[info" not in plain.stderr, plain.stderr  # no structlog line
    assert "archive" in plain.stdout
    wrong = tmp_path / "wrong.key"
    wrong.write_text("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5")
    bed.cli("backup", "verify", str(archive), "--key-file", str(wrong), expect=5)
    before = _state(bed, bed.acme)
    bed.cli("restore", COMPONENT, "-c", bed.acme, "--from", str(archive), "--key-file", str(wrong), expect=5)
    assert _state(bed, bed.acme) == before

    bed.psql(bed.acme, "DELETE FROM items WHERE id <= 1000")  # changed after the backup: restore brings it back
    bed.cli("-v", "restore", COMPONENT, "-c", bed.acme, "--from", str(archive), "--key-file", str(bed.key))
    assert bed.psql(bed.acme, "SELECT count(*) FROM items WHERE id <= 1000") == "1000"
    assert bed.psql(bed.acme, "SELECT count(*) FROM items WHERE body = 'only in acme'") == "1"


def _rewritten(src: Path, dst: Path, **changes) -> Path:
    """The same parts under a changed manifest (as if another version had written the archive)."""
    from agencystack.backup.archive import ArchiveWriter, open_archive

    with open_archive(src) as reader, open(dst, "wb") as handle:
        meta = {k: v for k, v in reader.manifest.items() if k not in ("parts", "format", "type")}
        writer = ArchiveWriter(handle, {**meta, **changes})
        for part in reader.parts:
            writer.add_stream(part.name, reader.open(part.name), part.kind, part.spec)
        writer.finish()
    return dst


def test_another_major_version_is_refused_unless_forced(bed, acme, tmp_path):
    future = _rewritten(acme["archive"], tmp_path / f"{COMPONENT}_{bed.acme}_20991231T000000Z.agsb",
                        component_version="2.0.0")
    before = _state(bed, bed.acme)
    refused = bed.cli("restore", COMPONENT, "-c", bed.acme, "--from", str(future), expect=5)
    assert "major versions differ" in refused.stderr and "--force" in refused.stderr
    assert _state(bed, bed.acme) == before

    forced = bed.cli("-v", "restore", COMPONENT, "-c", bed.acme, "--from", str(future), "--force", "--json")
    assert "major versions differ" in " ".join(json.loads(forced.stdout)["details"]["forced_despite"])
    assert bed.fingerprint(bed.acme)["items"] == acme["static"]["items"]  # back to the archive's rows
    assert bed.psql(bed.acme, "SELECT count(*) FROM items WHERE body = 'only in acme'") == "0"


def test_retention_runs_only_after_a_successful_backup(bed, acme, tmp_path):
    dest = tmp_path / "kept"
    first = [json.loads(bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(dest), "--json").stdout)["archive"]
             for _ in range(3)]
    assert len(set(first)) == 3
    last = json.loads(bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(dest), "--keep-last", "2",
                              "--json").stdout)
    assert set(last["deleted"]) == set(first[:2])
    assert sorted(str(p) for p in dest.iterdir()) == sorted([first[2], last["archive"]])

    bed.container(bed.acme, "db").stop(timeout=10)  # pg_dump cannot run: the backup fails
    try:
        failed = bed.cli("backup", COMPONENT, "-c", bed.acme, "--dest", str(dest), "--keep-last", "1", expect=5)
        errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "no archive written" in errors[0]
        assert sorted(str(p) for p in dest.iterdir()) == sorted([first[2], last["archive"]])  # nothing new or lost
    finally:
        bed.container(bed.acme, "db").start()


def test_no_secret_in_console_output_logs_or_manifests(bed, acme):
    """Every CLI output of this module, every log line and manifest: no secret value, no key."""
    secrets = {KEY_TEXT}
    for client in (bed.acme, bed.beta):
        if bed.env_file(client).exists():
            secrets |= {v for k, v in bed.settings(client).items() if k.endswith(("PASSWORD", "SECRET"))}
    assert len(secrets) >= 4
    texts = list(bed.outputs)
    texts += [p.read_text() for p in bed.logs.rglob("*") if p.is_file()]
    texts += [p.read_text() for p in bed.root.rglob("manifest.json")]
    assert texts and any("backup" in t for t in texts)
    for secret in secrets:
        leaks = [t[:200] for t in texts if secret in t]
        assert not leaks, f"a secret appears in: {leaks}"
