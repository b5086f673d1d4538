"""Backups under damage and on random data, through the real CLI: archives with random byte flips and random cuts
are refused (exit 5) before anything changes; a restore gives back exactly the data of the backup."""

from __future__ import annotations

import os
import random
import secrets
import time

import pytest

from tests.reliability.bed import COMPONENT, record, trials

pytestmark = [pytest.mark.engine, pytest.mark.reliability]


def _random_rows(rng: random.Random, count: int) -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;'\"\\$%éß→🙂\t"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))) for _ in range(count)]


def _insert(bed, client: str, rows: list[str]) -> None:
    tag = "q" + secrets.token_hex(4)  # dollar quoting: no escaping of the random text
    values = ",".join(f"(${tag}${row}${tag}$)" for row in rows)
    code, out = bed.psql(client, f"INSERT INTO notes (body) VALUES {values}")
    assert code == 0, out


def _fingerprint(bed, client: str) -> str:
    code, out = bed.psql(client, "SELECT count(*) || ':' || coalesce(md5(string_agg(id || '=' || body, '|' "
                                 "ORDER BY id)), '') FROM notes")
    assert code == 0, out
    return out


def _state(bed, client: str):
    containers = sorted(c.id for c in bed.docker.containers.list(all=True,
                                                                 filters={"label": f"io.agencystack.client={client}"}))
    env = (bed.root / "clients" / client / COMPONENT / ".env").read_bytes()
    return _fingerprint(bed, client), containers, env


@pytest.fixture(scope="module")
def archived(bed):
    seed = int(os.environ.get("AGENCYSTACK_RELIABILITY_SEED", time.time()))
    rng = random.Random(seed)
    client = bed.client("arch")
    bed.cli("install", COMPONENT, "-c", client)
    _insert(bed, client, _random_rows(rng, 200))
    dest = bed.work / "archives"
    bed.cli("backup", COMPONENT, "-c", client, "--dest", str(dest))
    archive = max(dest.glob("*.agsb"), key=lambda p: p.stat().st_mtime)
    yield {"client": client, "archive": archive, "rng": rng, "seed": seed, "dest": dest}
    bed.purge(client)


def test_corrupted_and_truncated_archives_are_refused_before_any_change(bed, archived, tmp_path):
    rng, original = archived["rng"], archived["archive"].read_bytes()
    n = trials(8)
    before = _state(bed, archived["client"])
    refused, failures = 0, []
    for i in range(2 * n):
        damaged = bytearray(original)
        if i % 2 == 0:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
            what = "flipped"
        else:
            del damaged[rng.randrange(1, len(damaged)):]
            what = "cut"
        path = tmp_path / f"damaged-{i}.agsb"
        path.write_bytes(bytes(damaged))
        result = bed.cli("restore", COMPONENT, "-c", archived["client"], "--from", str(path), expect=None)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if result.returncode == 5 and len(errors) == 1:
            refused += 1
        else:
            failures.append((what, result.returncode, result.stderr[-300:]))
    unchanged = _state(bed, archived["client"]) == before
    record("damaged archives (random flips and cuts) refused before any change", 2 * n, refused if unchanged else 0,
           f"(seed {archived['seed']})")
    assert refused == 2 * n, failures
    assert unchanged


def test_restore_gives_back_exactly_the_backed_up_random_data(bed, archived):
    rng, client = archived["rng"], archived["client"]
    n = trials(1)
    equal = 0
    for _ in range(n):
        _insert(bed, client, _random_rows(rng, rng.randint(1, 300)))
        expected = _fingerprint(bed, client)
        bed.cli("backup", COMPONENT, "-c", client, "--dest", str(archived["dest"]))
        archive = max(archived["dest"].glob("*.agsb"), key=lambda p: p.stat().st_mtime)
        code, out = bed.psql(client, f"DELETE FROM notes WHERE id % {rng.randint(2, 5)} = 0")
        assert code == 0, out
        _insert(bed, client, _random_rows(rng, 20))
        assert _fingerprint(bed, client) != expected
        bed.cli("restore", COMPONENT, "-c", client, "--from", str(archive))
        equal += _fingerprint(bed, client) == expected
        time.sleep(1.1)  # archive names carry the second: the next backup gets its own file
    record("restore equals the backup on random data", n, equal, f"(seed {archived['seed']})")
    assert equal == n
