"""``make bench``: every benchmark in one run, then one table and ONE JSON line with every figure beside its peer
and target.

Runs each script of BENCHES as its own process, one after another (a benchmark never shares the machine with
another), its output passed through as it comes; each ends with one JSON line (``"bench": NAME``), which is
kept. The summary lists, per benchmark, every figure that has a target: ours, the peer's, the ratio and whether
it is met; and, where a benchmark prints it, the floor (what a process that only imports the libraries every
command needs would reach) and the overhead above it (``(ours - floor) / peer``, with its own target). A benchmark
that fails or prints no JSON line is a failed row, never a skipped one; a benchmark that cannot run on this machine
(bench/swarm.py without root or network namespaces) says so itself: its JSON line has ``"skipped": REASON``, its row
says skipped with the reason, and the line's ``skipped`` names it: it does not fail ``all_ran`` (it ran and said
why it could not measure), but ``all_targets_met`` is false, since targets that were not measured were not met.

Each row of ``benches.<name>.figures[]`` in the JSON line has the keys ``figure``, ``ours`` (the command, a label),
``ours_value`` (its number), ``peer``, ``peer_value``, ``ratio``, ``floor_ratio``, ``overhead``, ``target`` (on the
ratio), ``overhead_target``, ``met`` (every target of the figure); a key that does not apply is null. Each
benchmark has ``load_average`` ``{"start", "end"}`` of its own run (docs/performance.md, "The summary line").

Usage: python bench/all.py [--quick] [NAME ...]   (--quick: the engine benchmark's shorter curves; NAMEs: a subset)
Exit 0 when every benchmark ran (whether or not its targets are met: "all_targets_met" says), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHES = ("cli_startup", "engine", "backup", "sso", "bulk", "hosts", "swarm")


def run(name: str, quick: bool) -> tuple[dict[str, Any] | None, float, int]:
    """Run bench/NAME.py, passing its output through; its last JSON line (or None), seconds, exit code."""
    argv = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if quick and name == "engine" else [])]
    print(f"\n=== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    found = None
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith("{"):
            try:
                candidate = json.loads(line)
            except ValueError:
                continue
            if isinstance(candidate, dict) and "bench" in candidate:
                found = candidate
    code = process.wait()
    return found, time.perf_counter() - started, code


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of one benchmark's JSON line that have a target, flattened to ours/peer/ratio/target/met."""
    figures = result.get("figures") or {}
    if not figures and isinstance(result.get("targets"), dict):  # sso.py: {"targets": {key: target}, key: value}
        figures = {key: {"value": result.get(key), "target": target,
                         "met": result.get(key) is not None and result[key] <= target}
                   for key, target in result["targets"].items()}
    if not figures and "target" in result:  # hosts.py: one figure, at the top level
        figures = {result["bench"]: result}
    found = []
    for key, figure in figures.items():
        if not isinstance(figure, dict) or "target" not in figure:
            continue
        ours = next((figure[k] for k in ("ours_ms", "ours_s", "median_ms", "value", "fleet_ms", "bulk_s")
                     if k in figure), None)
        peer = next((figure[k] for k in ("peer_ms", "peer_s", "one_host_ms", "one_by_one_s") if k in figure), None)
        found.append({"figure": key, "ours": figure.get("ours", key), "ours_value": ours, "peer": figure.get("peer"),
                      "peer_value": peer, "ratio": figure.get("ratio"), "target": figure["target"],
                      "met": bool(figure.get("met")), "floor_ratio": figure.get("floor_ratio"),
                      "overhead": figure.get("overhead"), "overhead_target": figure.get("overhead_target")})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="the engine benchmark's --quick")
    args = parser.parse_args()
    names = args.names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    started_load = _load()
    results: dict[str, Any] = {}
    for name in names:
        before = _load()
        result, seconds, code = run(name, args.quick)
        results[name] = {"seconds": round(seconds, 1), "exit_code": code, "ran": result is not None and code == 0,
                         "figures": rows(result) if result else [], "json": result,
                         "load_average": {"start": before, "end": _load()},
                         "skipped": (result or {}).get("skipped")}
        results[name]["all_targets_met"] = bool(results[name]["figures"]) and all(
            r["met"] for r in results[name]["figures"])
    print("\n=== make bench: every figure with a target")
    print(f"{'bench':<12} {'figure':<28} {'ours':>10} {'peer':>10} {'ratio':>7} {'target':>7} {'met':>4} {'floor':>6} "
          f"{'overhead':>8} {'target':>6}")
    for name, result in results.items():
        if not result["ran"]:
            print(f"{name:<12} {'(did not run: exit ' + str(result['exit_code']) + ')':<28}")
            continue
        if result["skipped"]:
            print(f"{name:<12} (skipped: {result['skipped']})")
            continue
        for r in result["figures"]:
            print(f"{name:<12} {r['figure']:<28} {_cell(r['ours_value']):>10} {_cell(r['peer_value']):>10} "
                  f"{_cell(r['ratio']):>7} {_cell(r['target']):>7} {'yes' if r['met'] else 'NO':>4} "
                  f"{_cell(r['floor_ratio']):>6} {_cell(r['overhead']):>8} {_cell(r['overhead_target']):>6}")
    every = all(r["ran"] and r["all_targets_met"] and not r["skipped"] for r in results.values())
    skipped = {n: r["skipped"] for n, r in results.items() if r["skipped"]}
    ended_load = _load()
    print(f"load average {started_load} at the start, {ended_load} at the end ({os.cpu_count()} CPUs)")
    print(json.dumps({"bench": "all", "all_targets_met": every, "all_ran": all(r["ran"] for r in results.values()),
                      "skipped": skipped,
                      "benches": {n: {k: v for k, v in r.items() if k != "json"} for n, r in results.items()},
                      "load_average": {"start": started_load, "end": ended_load}, "cpus": os.cpu_count()}))
    return 0 if all(r["ran"] for r in results.values()) else 1


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
