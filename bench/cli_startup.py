"""CLI start-up: cold `agencystack --help` and `agencystack components list` against `python -c "import typer"`.

Each command runs 10 times in fresh processes (median wall time), interleaved so machine noise hits all alike.
Target: both <= 1.3x the baseline (heavy modules such as the docker SDK load only in commands that need them).
Prints a table, then one JSON line with the figures.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time

RUNS = 10
TARGET = 1.3


def main() -> int:
    script = shutil.which("agencystack")
    if script is None:
        print("agencystack is not installed: run `make install`", file=sys.stderr)
        return 2
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
    baseline = medians["baseline: python -c 'import typer'"]
    print(f"{'command':<40} {'median ms':>10} {'ratio':>7}  target")
    figures = {}
    for name, median in medians.items():
        ratio = median / baseline
        verdict = "" if name.startswith("baseline") else ("ok" if ratio <= TARGET else "MISSED")
        print(f"{name:<40} {median * 1000:>10.1f} {ratio:>7.2f}  {verdict}")
        figures[name] = {"median_ms": round(median * 1000, 1), "ratio": round(ratio, 3)}
    print(json.dumps({"bench": "cli_startup", "runs": RUNS, "target_ratio": TARGET, "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
