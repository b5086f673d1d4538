"""Concurrent installs, as processes on the real engine: of one new client (the second waits on the lock, then
loads the settings the first saved: one database password, kept), and of N clients at once (each gets its own
default host, nobody is refused, every one is healthy)."""

from __future__ import annotations

import pytest

from tests.reliability.bed import COMPONENT, record, trials

pytestmark = [pytest.mark.engine, pytest.mark.reliability]


def test_concurrent_installs_of_one_new_client_keep_one_password(bed):
    n = trials(1)
    ok = 0
    failures = []
    for i in range(n):
        client = bed.client(f"same{i}")
        processes = [bed.start("install", COMPONENT, "-c", client) for _ in range(2)]
        results = [bed.finish(p) for p in processes]
        first = bed.saved(client).get("NOTES_DB_PASSWORD")
        again = bed.cli("install", COMPONENT, "-c", client, expect=None)
        healthy, detail = bed.healthy(client)
        good = (all(code == 0 for code, _ in results) and again.returncode == 0 and healthy
                and bed.saved(client).get("NOTES_DB_PASSWORD") == first and first)
        ok += bool(good)
        if not good:
            failures.append((client, results, again.stdout + again.stderr, detail))
        bed.purge(client)
    record("two installs of one new client started together", n, ok)
    assert ok == n, failures


def test_n_installs_for_n_clients_at_once(bed):
    n = trials(3)
    clients = [bed.client(f"many{i}") for i in range(n)]
    processes = [bed.start("install", COMPONENT, "-c", c) for c in clients]
    results = dict(zip(clients, (bed.finish(p) for p in processes)))
    ok = 0
    for client, (code, out) in results.items():
        healthy, detail = bed.healthy(client)
        ok += code == 0 and healthy
    hosts = {bed.cli("plan", COMPONENT, "-c", c, "--json").stdout for c in clients}
    record(f"{n} installs for {n} clients started together", n, ok)
    assert ok == n, results
    assert len(hosts) == n
    for client in clients:
        bed.purge(client)


def test_two_clients_racing_for_one_host_and_the_loser_is_refused(bed):
    racers = [bed.client("race-a"), bed.client("race-b")]
    host = f"shared.{bed.prefix}.localhost"
    processes = [bed.start("install", COMPONENT, "-c", c, "--domain", host) for c in racers]
    codes = [bed.finish(p)[0] for p in processes]
    record("two clients racing for one new host: exactly one wins", 1, int(sorted(codes) == [0, 2]))
    assert sorted(codes) == [0, 2], codes
    holder, taker = racers if codes[0] == 0 else racers[::-1]
    plan = bed.cli("plan", COMPONENT, "-c", taker, "--domain", host, expect=2)
    assert f"conflict  {host} is already routed for client '{holder}' (notes)" in plan.stdout
    refused = bed.cli("install", COMPONENT, "-c", taker, "--domain", host, expect=2)
    assert refused.stderr.count("\n") == 1 and f"client '{holder}'" in refused.stderr
    assert not (bed.root / "clients" / taker).exists()  # nothing written for the refused client
    assert bed.docker.containers.list(all=True, filters={"label": f"io.agencystack.client={taker}"}) == []
    bed.purge(holder)
