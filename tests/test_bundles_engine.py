"""Bundle installs on the real engine, with the fixture bundle ``tiers`` (tests/fixtures/thirdparty, tiers.py):

    tier-base <- tier-left <- tier-top,   tier-base <- tier-right      (``tiers`` names tier-top and tier-right)

Order (each after what it requires), parallelism (tier-left and tier-right at the same time), failure isolation
(a failing tier-left skips only tier-top), the re-run that completes only what is missing, and status / logs /
backup given the bundle's name; then many clients from a clients file, one of them failing alone.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.engine


def _steps(result) -> dict[str, dict]:
    data = result.json()
    assert len(data["clients"]) == 1
    return {s["component"]: s for s in data["clients"][0]["components"]}


def _containers(agencystack_run, client) -> dict[str, str]:
    shown = agencystack_run("status", "tiers", "-c", client, "--json").json()
    return {s["component"]: (s["services"] or [{}])[0].get("container", "") for s in shown}


def _history(root, client, component) -> list[dict]:
    return json.loads((root / "clients" / client / component / "manifest.json").read_text())["history"]


def test_a_bundle_installs_in_dependency_order_independent_components_at_once(with_plugins, agencystack_engine,
                                                                            agencystack_run, monkeypatch):
    client = agencystack_engine.client
    for prefix, delay in (("TIER_BASE", 1), ("TIER_LEFT", 4), ("TIER_RIGHT", 4), ("TIER_TOP", 1)):
        monkeypatch.setenv(f"{prefix}_DELAY", str(delay))
    result = agencystack_run("install", "tiers", "-c", client, "--json")
    assert result.exit_code == 0, result.output
    steps = _steps(result)
    assert list(steps) == ["tier-base", "tier-left", "tier-top", "tier-right"]
    assert {s["outcome"] for s in steps.values()} == {"ok"}
    base, left, right, top = (steps[n] for n in ("tier-base", "tier-left", "tier-right", "tier-top"))
    assert base["finished_at"] <= left["started_at"] and base["finished_at"] <= right["started_at"]
    assert left["finished_at"] <= top["started_at"]
    assert left["started_at"] < right["finished_at"] and right["started_at"] < left["finished_at"]  # together
    assert all(s["duration"] > 0 for s in steps.values())

    before = _containers(agencystack_run, client)
    again = agencystack_run("install", "tiers", "-c", client)  # the human form: progress, then the summary table
    assert again.exit_code == 0, again.output
    assert "✓ tier-top: unchanged" in again.stderr and "… tier-base: installing" in again.stderr
    header, *rows = again.stdout.strip().splitlines()
    assert header.split() == ["COMPONENT", "OUTCOME", "DURATION", "URL"]
    assert [r.split()[:2] for r in rows] == [[n, "unchanged"] for n in ("tier-base", "tier-left", "tier-top",
                                                                        "tier-right")]
    assert _containers(agencystack_run, client) == before


def test_a_failing_component_skips_only_its_dependents_and_a_rerun_completes_the_rest(
        with_plugins, agencystack_engine, agencystack_run, monkeypatch):
    client = agencystack_engine.client
    for prefix in ("TIER_BASE", "TIER_LEFT", "TIER_RIGHT", "TIER_TOP"):
        monkeypatch.setenv(f"{prefix}_DELAY", "0.5")
    monkeypatch.setenv("TIER_LEFT_FAIL", "true")
    result = agencystack_run("install", "tiers", "-c", client, "--json")
    assert result.exit_code == 1, result.output
    steps = _steps(result)
    assert {n: s["outcome"] for n, s in steps.items()} == {"tier-base": "ok", "tier-left": "failed",
                                                          "tier-top": "skipped", "tier-right": "ok"}
    assert "exited (3)" in steps["tier-left"]["detail"]
    assert steps["tier-top"]["detail"] == "tier-left failed"
    assert result.json()["ok"] is False

    status = agencystack_run("status", "tiers", "-c", client, "--json")  # the bundle's name works for status
    assert status.exit_code == 1
    assert {s["component"]: s["state"] for s in status.json()} == {
        "tier-base": "running", "tier-left": "failed", "tier-top": "absent", "tier-right": "running"}
    logs = agencystack_run("logs", "tiers", "-c", client)
    assert logs.exit_code == 0, logs.output
    assert any(line.startswith("tier-left/web") and line.endswith("| failing on purpose")
               for line in logs.stdout.splitlines()), (logs.stdout, logs.stderr)
    backup = agencystack_run("backup", "tiers", "-c", client, "--json")
    assert backup.exit_code == 0, backup.output
    assert {c["component"] for c in backup.json()["components"] if c["ok"]} == {"tier-base", "tier-left",
                                                                                 "tier-right"}

    document = json.loads((agencystack_engine.root / "clients" / client / "dashboard.json").read_text())
    shown = {c["name"]: c for c in document["components"]}  # the dashboard registry saw every action
    assert set(shown) == {"tier-base", "tier-left", "tier-right"}
    assert shown["tier-left"]["last_action"]["outcome"] == "ok"  # its backup, the last action, went well
    assert [h["outcome"] for h in _history(agencystack_engine.root, client, "tier-left")] == ["failed", "ok"]
    assert all(c["last_backup"]["verified"] and c["last_backup"]["size"] > 0 for c in shown.values())

    before = _containers(agencystack_run, client)
    monkeypatch.delenv("TIER_LEFT_FAIL")  # the cause fixed: the same command completes what is missing
    rerun = agencystack_run("install", "tiers", "-c", client, "--json")
    assert rerun.exit_code == 0, rerun.output
    assert {n: s["outcome"] for n, s in _steps(rerun).items()} == {
        "tier-base": "unchanged", "tier-left": "ok", "tier-top": "ok", "tier-right": "unchanged"}
    after = _containers(agencystack_run, client)
    assert after["tier-base"] == before["tier-base"] and after["tier-right"] == before["tier-right"]


def test_many_clients_from_a_clients_file_one_failing_alone(with_plugins, agencystack_engine, agencystack_run,
                                                            monkeypatch, tmp_path):
    ns = agencystack_engine.client
    for prefix in ("TIER_BASE", "TIER_LEFT", "TIER_RIGHT", "TIER_TOP"):
        monkeypatch.setenv(f"{prefix}_DELAY", "0.5")
    clients = [f"{ns}a", f"{ns}b", f"{ns}c"]
    path = tmp_path / "clients.yaml"
    path.write_text("clients:\n"
                    f"  - id: {clients[0]}\n    domain: a.example.com\n"
                    f"  - id: {clients[1]}\n    settings:\n      TIER_RIGHT_FAIL: 'true'\n"
                    f"  - id: {clients[2]}\n")
    result = agencystack_run("install", "tiers", "--clients", str(path), "--clients-parallel", "3", "--json")
    assert result.exit_code == 1, result.output
    runs = {c["client"]: c for c in result.json()["clients"]}
    assert [runs[c]["ok"] for c in clients] == [True, False, True]
    outcomes = {s["component"]: s["outcome"] for s in runs[clients[1]]["components"]}
    assert outcomes == {"tier-base": "ok", "tier-left": "ok", "tier-top": "ok", "tier-right": "failed"}
    for client in (clients[0], clients[2]):
        assert {s["outcome"] for s in runs[client]["components"]} == {"ok"}
        shown = agencystack_run("status", "tiers", "-c", client, "--json").json()
        assert {s["state"] for s in shown} == {"running"}

    human = agencystack_run("install", "tiers", "--clients", str(path))  # the summary says what failed and why
    assert human.exit_code == 1
    failed_rows = [r for r in human.stdout.splitlines() if " failed " in f" {r} "]
    assert [r.split()[:3] for r in failed_rows] == [[clients[1], "tier-right", "failed"]]
    assert any(line.startswith(f"{clients[1]}/tier-right: failed: service web of ") and "exited (3)" in line
               for line in human.stdout.splitlines()), human.stdout
    assert f"1 failed ({clients[1]}/tier-right)" in human.stderr
