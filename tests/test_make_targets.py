"""The Makefile's targets for every installed component distribution and bundle: ``make help`` lists them (a
third-party plugin's too), ``make <c>`` installs for CLIENT_ID, ``make demo-core`` installs the bundle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    return subprocess.run(["make", "-s", "-C", str(REPO), f"VENV={venv}", f"PYTHON={sys.executable}", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def _env(root: Path, plugin_site: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLIENT_ID", "DOMAIN", "MAKEFLAGS", "MAKELEVEL")}
    env.update(AGENCYSTACK_ROOT=str(root), AGENCYSTACK_LOG_DIR=str(root.parent / "log"),
               XDG_CACHE_HOME=str(root.parent / "cache"))
    if plugin_site is not None:
        env["PYTHONPATH"] = str(plugin_site)
    return env


def test_make_help_lists_every_component_and_bundle(with_plugins, agencystack_env):
    shown = _make("help", env=_env(agencystack_env, with_plugins))
    assert shown.returncode == 0, shown.stderr
    firsts = {line.split()[0] for line in shown.stdout.splitlines() if line.strip()}
    assert {"install", "test", "posthog", "keycloak", "edge", "demo-core", "hello", "tier-base", "tiers"} <= firsts
    assert "posthog-status posthog-logs posthog-restart posthog-backup" in shown.stdout

    dry = _make("-n", "demo-core", "CLIENT_ID=acme", "DOMAIN=acme.com", env=_env(agencystack_env, with_plugins))
    assert dry.returncode == 0 and dry.stdout.strip().endswith("agencystack install demo-core"), dry.stdout


def test_make_component_targets_run_for_client_id(with_plugins, agencystack_env):
    env = _env(agencystack_env, with_plugins)
    installed = _make("hello", "CLIENT_ID=acme", env=env)
    assert installed.returncode == 0, installed.stderr
    assert (agencystack_env / "clients" / "acme" / "hello" / "manifest.json").is_file()
    status = _make("hello-status", "CLIENT_ID=acme", env=env)
    assert status.returncode == 0 and "acme" in status.stdout and "running" in status.stdout, status.stdout
    restarted = _make("hello-restart", "CLIENT_ID=acme", env=env)
    assert restarted.returncode == 0 and "restarted" in restarted.stdout
