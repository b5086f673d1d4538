"""The one-pass restore on the real engine (the ``notes`` component: its only part is a Postgres dump): the dump is
loaded into a scratch database beside the live one while the component keeps running, then swapped in, so

- the live database answers, with its own data, while the archive loads;
- a part damaged near its end -- found only when its stream ends, after the load -- leaves the component exactly as
  it was: the same containers, never stopped, the same data, no scratch database;
- a scratch database a crashed restore left behind is dropped by the next one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.reliability.bed import COMPONENT

pytestmark = [pytest.mark.engine, pytest.mark.reliability]

SCRATCH = "notes_agencystack_restore"
ROWS = 150_000  # a load of a few seconds: long enough to be seen from beside it


def _count(bed, client: str) -> int:
    code, out = bed.psql(client, "SELECT count(*) FROM notes")
    assert code == 0, out
    return int(out)


def _databases(bed, client: str) -> set[str]:
    code, out = bed.psql(client, "SELECT datname FROM pg_database")
    assert code == 0, out
    return set(out.split())


def _containers(bed, client: str) -> dict[str, str]:
    """Each container of the client's component with when it last started: a stop and start changes it."""
    return {c.name: c.attrs["State"]["StartedAt"] for c in bed.docker.containers.list(
        all=True, filters={"label": f"io.agencystack.client={client}"})}


@pytest.fixture(scope="module")
def staged(bed):
    """A client with ROWS notes, backed up; then one more row, so a restore is seen to take the data back."""
    client = bed.client("stage")
    bed.cli("install", COMPONENT, "-c", client)
    code, out = bed.psql(client, f"INSERT INTO notes (body) SELECT md5(g::text) || repeat('x', 200) "
                                 f"FROM generate_series(1, {ROWS}) g")
    assert code == 0, out
    dest = bed.work / "staged-archives"
    bed.cli("backup", COMPONENT, "-c", client, "--dest", str(dest))
    archive = max(dest.glob("*.agsb"), key=lambda p: p.stat().st_mtime)
    code, out = bed.psql(client, "INSERT INTO notes (body) VALUES ('after the backup')")
    assert code == 0, out
    yield {"client": client, "archive": archive}
    bed.purge(client)


def test_the_live_database_answers_with_its_own_data_while_the_archive_loads_beside_it(bed, staged):
    client = staged["client"]
    live = _count(bed, client)
    assert live == ROWS + 1
    db_started = _containers(bed, client)[f"{client}_{COMPONENT}-db-1"]
    seen: list[tuple[bool, int]] = []  # (the scratch database exists, the live count) while the restore runs
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            code, out = bed.psql(client, f"SELECT (SELECT count(*) FROM pg_database WHERE datname = '{SCRATCH}'), "
                                         "(SELECT count(*) FROM notes)")
            if code == 0:
                scratch, count = out.split("|")
                seen.append((scratch == "1", int(count)))
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        restored = bed.cli("restore", COMPONENT, "-c", client, "--from", str(staged["archive"]))
    finally:
        stop.set()
        watcher.join(30)
    assert f"loading into scratch database {SCRATCH} (the component keeps running)" in restored.stderr
    assert "stopping the component for the swap" in restored.stderr
    during = [count for loading, count in seen if loading]
    assert during and set(during) == {live}, seen[:20]  # the live data, answered, while the scratch one loaded
    assert _count(bed, client) == ROWS and SCRATCH not in _databases(bed, client)
    # the database served throughout: swapped in by a rename, never restarted (the .env did not change)
    assert _containers(bed, client)[f"{client}_{COMPONENT}-db-1"] == db_started
    assert bed.healthy(client)[0]


def test_a_part_damaged_near_its_end_leaves_the_running_component_as_it_was(bed, staged, tmp_path):
    from agencystack.backup.archive import open_archive

    client = staged["client"]
    with open_archive(staged["archive"]) as reader:
        part = reader.part_info("db")
    damaged = bytearray(staged["archive"].read_bytes())
    damaged[part.offset + part.size - 64] ^= 0x5A  # in the part's last frame: its stream fails at its end
    path = tmp_path / "late-damage.agsb"
    path.write_bytes(bytes(damaged))
    code, out = bed.psql(client, "INSERT INTO notes (body) VALUES ('written before the damaged restore')")
    assert code == 0, out
    before = (_count(bed, client), _containers(bed, client), Path(bed.root, "clients", client, COMPONENT,
                                                                   ".env").read_bytes())

    refused = bed.cli("restore", COMPONENT, "-c", client, "--from", str(path), expect=5)
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "damaged" in error and "nothing was changed" in error, error
    after = (_count(bed, client), _containers(bed, client), Path(bed.root, "clients", client, COMPONENT,
                                                                  ".env").read_bytes())
    assert after == before  # same data, same containers never stopped, same settings
    assert SCRATCH not in _databases(bed, client)


def test_a_scratch_database_left_by_a_crashed_restore_is_dropped_by_the_next(bed, staged):
    client = staged["client"]
    code, out = bed.psql(client, f"CREATE DATABASE {SCRATCH}")
    assert code == 0, out
    bed.cli("restore", COMPONENT, "-c", client, "--from", str(staged["archive"]))
    assert _count(bed, client) == ROWS and SCRATCH not in _databases(bed, client)
