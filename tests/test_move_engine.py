"""``agencystack move`` between two real engines, with the data compared before and after: Postgres rows (count and
checksum), a volume's files (checksums), a Redis volume, and the .env byte for byte. One move runs through; one is
SIGKILLed mid-restore and run again (it resumes); finalize removes the stopped source; rollback puts a client back.

The component is ``backupdemo`` (tests/fixtures/backupdemo: Postgres dump, Redis volume, files by command, .env),
driven as the operator does, with the CLI as a process. The second engine is a dockerd of this module's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.engine.helpers import private_engine, wait_until
from tests.helpers import cli_argv, cli_process, process_env
from tests.images import build as _build

pytestmark = pytest.mark.engine

FIXTURE = Path(__file__).parent / "fixtures" / "backupdemo"
COMPONENT = "backupdemo"


class Bed:
    def __init__(self, work: Path, site: Path, target: str):
        self.root = work / "root"
        self.target = target
        self.env = process_env(self.root, pythonpath=[site, Path(__file__).parent.parent],
                               AGENCYSTACK_PLUGINS=COMPONENT)
        self.engines = {"local": docker.from_env(), "h2": docker.DockerClient(base_url=target)}

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        return cli_process(*args, env=self.env, expect=expect)

    def container(self, host: str, client: str, service: str):
        return self.engines[host].containers.get(f"{client}_{COMPONENT}-{service}-1")

    def exec(self, host: str, client: str, service: str, cmd: list[str]) -> str:
        code, out = self.container(host, client, service).exec_run(cmd)
        text = out.decode("utf-8", "replace")
        assert code == 0, f"{cmd}: exit {code}: {text}"
        return text.strip()

    def psql(self, host: str, client: str, sql: str) -> str:
        return self.exec(host, client, "db", ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", "demo",
                                              "-d", "demo", "-c", sql])

    def env_file(self, client: str) -> Path:
        return self.root / "clients" / client / COMPONENT / ".env"

    def fingerprint(self, host: str, client: str) -> dict[str, str]:
        return {
            "rows": self.psql(host, client, "SELECT count(*) || ':' || md5(string_agg(id || ':' || body, ',' "
                                            "ORDER BY id)) FROM items"),
            "redis": self.exec(host, client, "cache", ["redis-cli", "mget", *[f"k{i}" for i in range(20)]]),
            "files": self.exec(host, client, "app", ["sh", "-c", "cd /srv/files && find . -type f | sort | "
                                                                 "xargs md5sum"]),
            "env": hashlib.sha256(self.env_file(client).read_bytes()).hexdigest(),
        }

    def seed(self, client: str) -> dict[str, str]:
        # on local, named: with two hosts a new client goes to the one with more free memory (the shared engine
        # holds other tests' containers), and this bed moves it from local
        self.cli("install", COMPONENT, "-c", client, "--host", "local", "--domain", f"{client}.example.test")
        wait_until(lambda: self.container("local", client, "db").exec_run(
            ["pg_isready", "-q", "-h", "127.0.0.1"]).exit_code == 0, 120, 0.5, "postgres accepting connections")
        self.psql("local", client, "CREATE TABLE items (id serial PRIMARY KEY, body text NOT NULL); "
                                   "INSERT INTO items (body) SELECT md5(random()::text) || repeat(md5(g::text), 3) "
                                   "FROM generate_series(1, 20000) g")
        self.exec("local", client, "cache", ["sh", "-c", "for i in $(seq 0 19); do redis-cli set k$i v$i-$RANDOM "
                                                         ">/dev/null; done; redis-cli save"])
        self.exec("local", client, "app", ["sh", "-c", "mkdir -p /srv/files/sub && echo hello > /srv/files/a.txt && "
                                                       "head -c 100000 /dev/urandom > /srv/files/sub/blob.bin"])
        return self.fingerprint("local", client)

    def projects(self, host: str, client: str, running: bool = False) -> list[str]:
        return [c.name for c in self.engines[host].containers.list(
            all=not running, filters={"label": f"io.agencystack.client={client}"})]


@pytest.fixture(scope="module")
def bed(docker_client, images, tmp_path_factory):
    work = tmp_path_factory.mktemp("move-engine")
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(FIXTURE)], check=True, capture_output=True)
    with private_engine("mv2", work, work / "dockerd.log", "10.236.0.0/16") as target:
        _build.ensure_images(target.client, only=["busybox", "postgres", "redis"])
        made = Bed(work, site, target.host)
        made.cli("hosts", "add", "h2", "--docker-host", target.host)
        yield made
        for client in os.listdir(made.root / "clients") if (made.root / "clients").is_dir() else ():
            made.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes", expect=None)
        for c in made.engines["local"].containers.list(all=True, filters={"label": "io.agencystack.component="
                                                                                   + COMPONENT}):
            if str(made.root) in c.labels.get("com.docker.compose.project.working_dir", ""):
                c.remove(force=True, v=True)


def test_move_carries_every_byte_and_stops_the_source(bed):
    client = f"mv{secrets.token_hex(3)}"
    before = bed.seed(client)
    env_before = bed.env_file(client).read_bytes()

    moved = bed.cli("move", "-c", client, "--to", "h2", "--json")
    result = json.loads(moved.stdout)
    assert result["from"] == "local" and result["to"] == "h2" and result["step"] == "stopped"
    assert bed.fingerprint("h2", client) == before
    assert bed.env_file(client).read_bytes() == env_before
    assert bed.projects("local", client, running=True) == []  # stopped, not deleted
    assert bed.projects("local", client)  # the containers (and volumes) are still there
    status = json.loads(bed.cli("status", COMPONENT, "-c", client, "--json").stdout)
    assert status[0]["host"] == "h2" and status[0]["state"] == "running"
    assert json.loads((bed.root / "clients" / client / "placement.json").read_text())["host"] == "h2"

    again = bed.cli("move", "-c", client, "--to", "h2")  # nothing left to do: says so
    assert "already on h2" in again.stdout
    refused = bed.cli("hosts", "remove", "h2", expect=2)
    assert client in refused.stderr

    done = bed.cli("move", "-c", client, "--finalize", "--json")
    assert json.loads(done.stdout)["step"] == "finalized"
    assert bed.projects("local", client) == []
    assert not bed.engines["local"].volumes.list(filters={"label": f"com.docker.compose.project={client}_{COMPONENT}"})
    assert bed.fingerprint("h2", client) == before
    bed.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes")


def test_a_move_killed_mid_restore_resumes_and_loses_nothing(bed):
    client = f"mk{secrets.token_hex(3)}"
    before = bed.seed(client)
    journal = bed.root / "clients" / client / "move.json"
    process = subprocess.Popen(cli_argv("move", "-c", client, "--to", "h2"), env=bed.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: journal.is_file() and json.loads(journal.read_text())["step"] == "restore"
                   and bed.projects("h2", client), 300, 0.05, "the restore on the target under way")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert json.loads(journal.read_text())["step"] == "restore"
    assert bed.projects("local", client, running=True)  # the source still runs

    resumed = bed.cli("move", "-c", client, "--to", "h2", "--json")
    assert json.loads(resumed.stdout)["step"] == "stopped"
    assert bed.fingerprint("h2", client) == before

    back = bed.cli("move", "-c", client, "--rollback", "--json")  # not finalized: it can still go back
    assert json.loads(back.stdout)["step"] == "rolled-back"
    assert bed.projects("h2", client) == []
    assert bed.fingerprint("local", client) == before
    status = json.loads(bed.cli("status", COMPONENT, "-c", client, "--json").stdout)
    assert status[0]["host"] == "local" and status[0]["state"] == "running"
    bed.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes")
