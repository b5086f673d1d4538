"""``make bench`` (bench/all.py): every benchmark's figures with a target reach the one summary line, whatever shape
each benchmark prints them in, and a benchmark that fails is a failed row, never a missing one."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH_ALL = Path(__file__).resolve().parent.parent / "bench" / "all.py"


@pytest.fixture
def bench_all():
    spec = importlib.util.spec_from_file_location("bench_all", BENCH_ALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the shapes the benchmarks print (abridged from their real JSON lines)
ENGINE = {"bench": "engine", "figures": {
    "noop": {"ours": "agencystack no-op re-install", "peer": "docker compose up -d (again)", "ours_ms": 431.4,
             "peer_ms": 1872.0, "ratio": 0.231, "target": 0.15, "met": False, "floor_ratio": 0.147}}}
BACKUP = {"bench": "backup", "figures": {
    "restore": {"ours": "agencystack restore", "ours_s": 10.09, "peer": "pg_restore", "peer_s": 8.55, "ratio": 0.847,
                "target": 0.9, "met": False},
    "rss_growth_mb": {"ours": "peak RSS", "value": 6.4, "peer": None, "target": 50, "met": True}}}
SSO = {"bench": "sso", "ingest_ratio": 0.992, "ui_overhead_ms": 3.775,
       "targets": {"ingest_ratio": 1.05, "ui_overhead_ms": 5.0}, "met": True}
HOSTS = {"bench": "hosts", "one_host_ms": 336.6, "fleet_ms": 440.0, "ratio": 1.312, "target": 1.3, "met": False}
CLI = {"bench": "cli_startup", "figures": {"baseline: python -c 'import typer'": {"median_ms": 63.0, "ratio": 1.0},
                                           "agencystack --help": {"median_ms": 61.4, "peer_ms": 63.0, "ratio": 0.976,
                                                                  "target": 1.15, "met": True}}}


def test_every_figure_with_a_target_is_a_row_whatever_its_shape(bench_all) -> None:
    assert [(r["figure"], r["ours_value"], r["peer_value"], r["target"], r["met"], r.get("floor_ratio"))
            for r in bench_all.rows(ENGINE)] == [("noop", 431.4, 1872.0, 0.15, False, 0.147)]
    assert {r["figure"]: (r["ours_value"], r["met"]) for r in bench_all.rows(BACKUP)} == {
        "restore": (10.09, False), "rss_growth_mb": (6.4, True)}
    assert {r["figure"]: (r["ours_value"], r["target"], r["met"]) for r in bench_all.rows(SSO)} == {
        "ingest_ratio": (0.992, 1.05, True), "ui_overhead_ms": (3.775, 5.0, True)}
    assert [(r["ours_value"], r["peer_value"], r["ratio"], r["met"]) for r in bench_all.rows(HOSTS)] == [
        (440.0, 336.6, 1.312, False)]
    assert [r["figure"] for r in bench_all.rows(CLI)] == ["agencystack --help"]  # the baseline has no target


def test_a_benchmark_that_fails_is_a_failed_row_and_the_run_exits_1(bench_all, tmp_path, monkeypatch,
                                                                    capsys) -> None:
    (tmp_path / "good.py").write_text(f"print('working'); print({json.dumps(json.dumps(HOSTS))})\n")
    (tmp_path / "broken.py").write_text("import sys; print('set-up failed', file=sys.stderr); sys.exit(1)\n")
    monkeypatch.setattr(bench_all, "HERE", tmp_path)
    monkeypatch.setattr(bench_all, "BENCHES", ("good", "broken"))
    monkeypatch.setattr(sys, "argv", ["all.py"])
    assert bench_all.main() == 1
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["all_ran"] is False and summary["all_targets_met"] is False
    assert summary["benches"]["broken"]["ran"] is False and summary["benches"]["broken"]["exit_code"] == 1
    assert summary["benches"]["good"]["figures"][0]["ratio"] == 1.312
    assert "working" in out and "(did not run: exit 1)" in out


def test_every_row_has_the_issue_28_keys_and_keeps_the_old_ones(bench_all) -> None:
    """Readers' scripts compare ``benches.<name>.figures[]`` across versions: ``ours`` stays the command's label and
    ``ours_value`` its number; ``floor_ratio``, ``overhead`` and ``overhead_target`` are there, null where no floor
    applies; ``met`` needs the overhead's target too (bench/engine.py decides it)."""
    noop = dict(ENGINE["figures"]["noop"], overhead=0.061, overhead_target=0.03)
    [row] = bench_all.rows({"bench": "engine", "figures": {"noop": noop}})
    assert set(row) == {"figure", "ours", "ours_value", "peer", "peer_value", "ratio", "floor_ratio", "overhead",
                        "overhead_target", "target", "met"}
    assert (row["ours"], row["ours_value"], row["overhead"], row["overhead_target"]) == (
        "agencystack no-op re-install", 431.4, 0.061, 0.03)
    [hosts] = bench_all.rows(HOSTS)
    assert hosts["floor_ratio"] is None and hosts["overhead"] is None


def test_the_engine_bench_takes_the_overhead_above_the_floor_pair_by_pair() -> None:
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH_ALL.parent / "engine.py")
    engine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine)
    figure = {"ours_samples_ms": [400.0, 420.0, 380.0], "peer_samples_ms": [2000.0, 2000.0, 2000.0], "met": True}
    engine.with_overhead(figure, "noop", [0.3, 0.3, 0.3])  # the floor, in seconds as measured
    assert figure["overhead"] == 0.05 and figure["overhead_target"] == 0.03 and figure["met"] is False
    curve = [{"projects": 10, "status_all_ms": 300.0}, {"projects": 50, "status_all_ms": 320.0},
             {"projects": 100, "status_all_ms": 900.0}]
    slope = engine.per_project(curve)
    assert slope["ours_ms"] == 0.5 and slope["met"] is True


@pytest.fixture
def bench_swarm(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_ALL.parent))  # it imports bench/engine.py's statistics, as a script does
    spec = importlib.util.spec_from_file_location("bench_swarm", BENCH_ALL.parent / "swarm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_swarm_bench_prints_both_figures_in_the_summary_lines_shape(bench_all, bench_swarm, capsys) -> None:
    """bench/swarm.py's JSON line: ``bench``, ``skipped`` (null), ``figures`` fresh and status_all with the peer,
    the ratio, its target, the floor and the overhead; where the fresh install's time went; the load average.
    bench/all.py makes each a row with every key of the summary line."""
    fresh = bench_swarm.figure("fresh", [30.0, 32.0, 31.0], [15.0, 16.0, 15.5], [0.3, 0.3, 0.3], [0.99, 1.0, 0.98],
                               "how")
    fresh.update(engine_busy_ms={"ours": 28000.0, "peer": 15000.0}, outside_engine_ms={"ours": 3000.0, "peer": 500.0})
    status = bench_swarm.figure("status_all", [0.6, 0.7, 0.65], [1.8, 2.0, 1.9], [0.3, 0.3, 0.3],
                                [0.16, 0.15, 0.16], "the floor alone")
    bench_swarm.report({"fresh": fresh, "status_all": status}, {"bed_up_s": 9.0}, [1.0, 1.0, 1.0])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["bench"] == "swarm" and line["skipped"] is None and set(line["load_average"]) == {"start", "end"}
    assert set(line["figures"]) == {"fresh", "status_all"}
    assert line["figures"]["fresh"]["ratio"] == 2.0 and line["figures"]["fresh"]["target"] == 0.9
    assert line["figures"]["status_all"]["target"] == 0.5 and line["figures"]["status_all"]["met"] is True
    assert line["all_targets_met"] is False  # the fresh install's 2.0 misses its 0.9
    for key in ("ours_samples_ms", "peer_samples_ms", "floor_ms", "floor_ratio", "overhead", "floor_bound"):
        assert key in line["figures"]["fresh"] and key in line["figures"]["status_all"], key
    rows = {r["figure"]: r for r in bench_all.rows(line)}
    assert set(rows) == {"fresh", "status_all"}
    for row in rows.values():
        assert set(row) == {"figure", "ours", "ours_value", "peer", "peer_value", "ratio", "floor_ratio", "overhead",
                            "overhead_target", "target", "met"}
    assert (rows["status_all"]["ours_value"], rows["status_all"]["peer_value"], rows["status_all"]["ratio"]) == (
        650.0, 1900.0, 0.342)
    assert rows["fresh"]["floor_ratio"] == 0.99 and rows["fresh"]["overhead_target"] is None


def test_the_swarm_bench_skips_with_its_reason_where_it_cannot_run_and_make_bench_says_so(
        bench_all, bench_swarm, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench_swarm.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "argv", ["swarm.py"])
    assert bench_swarm.main() == 0  # a skip, not a failure
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["bench"] == "swarm" and line["figures"] == {} and "needs root" in line["skipped"]
    assert set(line["load_average"]) == {"start", "end"}
    (tmp_path / "good.py").write_text(f"print({json.dumps(json.dumps(HOSTS | {'ratio': 1.0, 'met': True}))})\n")
    (tmp_path / "swarm.py").write_text(f"print({json.dumps(json.dumps(line))})\n")
    monkeypatch.setattr(bench_all, "HERE", tmp_path)
    monkeypatch.setattr(bench_all, "BENCHES", ("good", "swarm"))
    monkeypatch.setattr(sys, "argv", ["all.py"])
    assert bench_all.main() == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    # it ran and said why; its targets were not measured, so they are not met
    assert summary["all_ran"] is True and summary["all_targets_met"] is False
    assert summary["skipped"] == {"swarm": line["skipped"]} and summary["benches"]["swarm"]["figures"] == []
    assert f"(skipped: {line['skipped']})" in out


def test_the_swarm_bench_peer_deploys_the_rendered_stack_with_what_stack_deploy_needs(bench_swarm) -> None:
    rendered = {"name": "c_benchstack", "services": {
        "db": {"image": "busybox", "restart": "unless-stopped", "healthcheck": {"test": ["CMD", "true"]},
               "volumes": ["dbdata:/data"], "networks": {"back": {}}},
        "migrate": {"image": "busybox", "restart": "no", "labels": {"io.agencystack.job": "true"},
                    "depends_on": {"db": {"condition": "service_healthy"}}}},
        "networks": {"back": {"name": "c_benchstack_back", "internal": True}},
        "volumes": {"dbdata": {"name": "c_benchstack_dbdata"}}}
    made = bench_swarm.stack_file(rendered)
    assert "name" not in made and all("depends_on" not in s and "restart" not in s for s in made["services"].values())
    assert made["services"]["db"]["deploy"] == {"endpoint_mode": "dnsrr", "restart_policy": {"condition": "any"},
                                                "replicas": 1}
    assert made["services"]["migrate"]["deploy"]["mode"] == "replicated-job"
    assert made["services"]["migrate"]["deploy"]["restart_policy"] == {"condition": "none"}
    assert made["services"]["db"]["healthcheck"] == {"test": ["CMD", "true"]}
    assert made["networks"]["back"] == {"name": "c_benchstack_back", "internal": True, "driver": "overlay",
                                        "attachable": True}
    assert made["volumes"] == rendered["volumes"]
