"""Bulk installs, measured in one run on the engine at $DOCKER_HOST (default the test engine), with the fixture
bundle ``tiers`` (tests/fixtures/thirdparty, tiers.py; busybox services with health checks), pip-installed into a
temporary directory as a third party's plugin would be:

    tier-base (B s) <- tier-left (L s) <- tier-top (T s),   tier-base <- tier-right (R s)

- **one client's bundle vs its critical path**: ``agencystack install tiers -c X`` (tier-left and tier-right at
  once) against the longest dependency chain measured alone, ``agencystack install tier-top -c Y`` (base, left,
  top one after another), in pairs whose order alternates; target: bundle <= 1.15 x critical path (median ratio).
- **10 clients x the bundle**: ``agencystack install tiers --clients clients.yaml`` (4 clients at a time) against
  the same 10 installs one after another (``install tiers -c Ci``, each a process); target: <= 0.6 x; the peak RSS
  of the bulk CLI process (its own maximum resident set, from wait4) is reported.

Each measurement starts from an engine without the bench's containers (what is installed is uninstalled, untimed,
between them): running containers' health checks load the engine and would bias whichever side runs second.

Every command is a fresh process as an operator types it. Everything installed is uninstalled with its data at the
end. Prints the figures, then ONE JSON line with the ratios (the last line of the output).

Usage: python bench/bulk.py [--runs N] [--clients N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.images import build  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "thirdparty"
DELAYS = {"TIER_BASE_DELAY": "2", "TIER_LEFT_DELAY": "3", "TIER_TOP_DELAY": "2", "TIER_RIGHT_DELAY": "3"}
SMALL_DELAYS = dict.fromkeys(DELAYS, "1")
CLI = str(Path(sys.executable).parent / "agencystack")


class Bench:
    def __init__(self, work: Path, host: str):
        self.env = dict(os.environ, AGENCYSTACK_ROOT=str(work / "root"), AGENCYSTACK_LOG_DIR=str(work / "log"),
                        XDG_CACHE_HOME=str(work / "cache"), DOCKER_HOST=host, PYTHONPATH=str(work / "site"),
                        AGENCYSTACK_HOST_NAMESPACE=f"b{secrets.token_hex(3)}")
        for key in ("CLIENT_ID", "DOMAIN"):
            self.env.pop(key, None)

    def run(self, *args: str, delays: dict[str, str] = DELAYS) -> tuple[float, int]:
        """Run the CLI as a process: (seconds, its own peak RSS in KiB). A failure stops the bench."""
        return timed_rss(self, *args, delays=delays)

    def cleanup(self) -> None:
        """Uninstall (with data) every component installed so far (untimed)."""
        from agencystack.state import StateRoot

        for found in list(StateRoot(Path(self.env["AGENCYSTACK_ROOT"])).installed()):
            subprocess.run([CLI, "uninstall", found.component, "-c", found.client, "--purge", "--yes", "--force"],
                           env=self.env, capture_output=True)


def timed_rss(bench: Bench, *args: str, delays: dict[str, str]) -> tuple[float, int]:
    """Like Bench.run, reaping the process with wait4 to get its own maximum resident set size."""
    started = time.monotonic()
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen([CLI, *args], env={**bench.env, **delays}, stdout=subprocess.DEVNULL, stderr=errors)
    _, status, usage = os.wait4(process.pid, 0)  # the process's own maximum resident set (KiB), as it is reaped
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bench/bulk.py: agencystack {' '.join(args)} exited {process.returncode}: "
                         f"{_tail(errors)}")
    return seconds, usage.ru_maxrss


def _tail(handle) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")[-800:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="pairs for the critical-path figure (default 3)")
    parser.add_argument("--clients", type=int, default=10, help="clients of the many-clients figure (default 10)")
    args = parser.parse_args()
    host = build.docker_host()
    build.ensure_images(only=["busybox"])
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(work / "site"), str(FIXTURE)], check=True)
    bench = Bench(work, host)
    tag = secrets.token_hex(2)
    figures: dict[str, object] = {}
    try:
        bench.run("components", "list")  # the entry-point cache, as on any host after its first command
        ratios, pairs = [], []
        for i in range(args.runs):
            chain_client, bundle_client = f"c{tag}{i}", f"b{tag}{i}"
            order = [("chain", ("install", "tier-top", "-c", chain_client)),
                     ("bundle", ("install", "tiers", "-c", bundle_client))]
            if i % 2:
                order.reverse()
            took = {}
            for name, argv in order:
                took[name] = bench.run(*argv)[0]
                bench.cleanup()  # what runs keeps the engine busy (health checks): each side starts from nothing
            pairs.append({k: round(v, 2) for k, v in took.items()})
            ratios.append(took["bundle"] / took["chain"])
            print(f"pair {i + 1}: bundle {took['bundle']:.2f}s, critical path alone {took['chain']:.2f}s",
                  file=sys.stderr)
        ratio = statistics.median(ratios)
        figures["bundle_vs_critical_path"] = {"ratio": round(ratio, 3), "target": 1.15, "met": ratio <= 1.15,
                                              "pairs": pairs}

        many = [f"m{tag}{i}" for i in range(args.clients)]
        seq = [f"s{tag}{i}" for i in range(args.clients)]
        clients_file = work / "clients.yaml"
        clients_file.write_text("clients:\n" + "".join(f"  - id: {c}\n" for c in many))
        started = time.monotonic()
        for client in seq:
            bench.run("install", "tiers", "-c", client, delays=SMALL_DELAYS)
        one_by_one = time.monotonic() - started
        bench.cleanup()  # the bulk run starts from an engine as empty as the one-by-one run had
        bulk, rss = timed_rss(bench, "install", "tiers", "--clients", str(clients_file), "--clients-parallel", "4",
                              delays=SMALL_DELAYS)
        ratio = bulk / one_by_one
        print(f"{args.clients} clients: bulk {bulk:.2f}s (peak RSS {rss / 1024:.0f} MiB), one after another "
              f"{one_by_one:.2f}s", file=sys.stderr)
        figures["clients_bulk_vs_one_by_one"] = {"ratio": round(ratio, 3), "target": 0.6, "met": ratio <= 0.6,
                                                 "bulk_s": round(bulk, 2), "one_by_one_s": round(one_by_one, 2),
                                                 "clients": args.clients, "peak_rss_mib": round(rss / 1024, 1)}
    finally:
        bench.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    met = all(f["met"] for f in figures.values())
    print(json.dumps({"bench": "bulk", "all_targets_met": met, "figures": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
