"""CLI start-up: cold `agencystack --help` and `agencystack components list` against `python -c "import typer"`.

Each command runs 10 times in fresh processes, interleaved in rounds; the ratio is the median of each round's
ratio to the baseline (load drifts on shared machines; a round's commands run back to back and see the same load).
Target: both <= 1.15x the baseline (the CLI builds only the sub-command it runs; heavy modules such as the docker
SDK, pydantic and structlog load only in commands that need them). Prints a table with the load average, then one
JSON line with every figure, its peer, target and whether it is met.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

RUNS = 15
TARGETS = {"agencystack --help": 1.05, "agencystack components list": 1.10}
TARGET = max(TARGETS.values())  # the JSON line's "target_ratio" (kept for readers' scripts): the loosest


def _compile_bytecode() -> None:
    """Byte-compile agencystack and the installed plugins, as a regular (non-editable) pip install does; with
    PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise be compiled from source on every start."""
    import compileall
    import importlib.util
    from pathlib import Path

    from agencystack.plugins import discover

    packages = {"agencystack"} | {ep["value"].split(":")[0].split(".")[0] for ep in discover()}
    for name in sorted(packages):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                compileall.compile_dir(Path(location), quiet=1)


def main() -> int:
    # the console script of this interpreter's environment (what `make install` made), not whatever PATH finds
    # first (a pyenv shim is a bash script that starts another interpreter: it would time the shim)
    beside = os.path.join(os.path.dirname(sys.executable), "agencystack")
    script = beside if os.path.exists(beside) else shutil.which("agencystack")
    if script is None:
        print("agencystack is not installed: run `make install`", file=sys.stderr)
        return 2
    _compile_bytecode()
    started_load = [round(x, 2) for x in os.getloadavg()]
    commands = {
        "baseline: python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "agencystack --help": [script, "--help"],
        "agencystack components list": [script, "components", "list"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for name, argv in commands.items():  # warm the OS page cache once; "cold" = a new interpreter each run
        subprocess.run(argv, capture_output=True, check=True)
    for _ in range(RUNS):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            samples[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base_name = "baseline: python -c 'import typer'"
    baseline = medians[base_name]
    print(f"{'command':<40} {'median ms':>10} {'min ms':>8} {'ratio':>7}  target")
    figures = {}
    for name, median in medians.items():
        # ratio = median over rounds of (this command / the baseline in the same round): the machine's load
        # drifts, and a round's commands run back to back, so each pair sees the same load
        ratio = statistics.median(v / b for v, b in zip(samples[name], samples[base_name]))
        verdict = "" if name == base_name else ("ok" if ratio <= TARGETS[name] else "MISSED")
        print(f"{name:<40} {median * 1000:>10.1f} {min(samples[name]) * 1000:>8.1f} {ratio:>7.2f}  {verdict}")
        figures[name] = {"median_ms": round(median * 1000, 1), "min_ms": round(min(samples[name]) * 1000, 1),
                         "ratio": round(ratio, 3), "ratio_of_medians": round(median / baseline, 3)}
        if name != base_name:
            figures[name].update(ours=name, peer="python -c 'import typer'", peer_ms=round(baseline * 1000, 1),
                                 target=TARGETS[name], met=ratio <= TARGETS[name], floor_ratio=None, overhead=None)
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {started_load} at the start, {load} at the end ({os.cpu_count()} CPUs)")
    met = all(f["met"] for n, f in figures.items() if n != base_name)
    print(json.dumps({"bench": "cli_startup", "runs": RUNS, "target_ratio": TARGET, "all_targets_met": met,
                      "targets": TARGETS, "figures": figures, "load_average": load,
                      "load_average_start": started_load, "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
