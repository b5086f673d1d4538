"""The frozen compatibility fixture (tests/compat: a component written against plugin API 1.0.0, 2026-11-27, with
the old broadcast ``dashboard_entries`` and that day's public names) still works unchanged: installed as a
distribution of its own, its own tests pass (with deprecation warnings), it runs on the real engine (install, no-op
re-install, status and its dashboard tile without ``entries_error`` here; backup, destroy and restore in its own
tests, run here on the engine), and ``components
list`` and ``doctor`` warn once, naming it. A component written against today's API keeps working too
(tests/fixtures/thirdparty's ``hello`` tile, tests/test_dashboard_entries.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agencystack.testing import run_cli
from tests.helpers import on_path, pip_install

COMPAT = Path(__file__).parent / "compat"
DEPRECATED = "DashboardContext.base is deprecated since plugin API 1.1.0, removed in 2.0.0"


@pytest.fixture(scope="module")
def compat_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/compat pip-installed as a user installs a plugin (its own distribution, not the project's)."""
    return pip_install(tmp_path_factory.mktemp("compat-site"), COMPAT)


@pytest.fixture
def with_compat(compat_site: Path, monkeypatch: pytest.MonkeyPatch, agencystack_env: Path) -> Path:
    return on_path(compat_site, monkeypatch)


@pytest.fixture
def compat_images(images, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The image settings an offline engine needs, in the environment (as the Nov-27 docs told authors)."""
    values = {"COMPAT_WEB_IMAGE": images["busybox"], "COMPAT_DB_IMAGE": images["postgres"],
              "EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_the_fixture_says_it_is_frozen():
    for path in [COMPAT / "pyproject.toml", *sorted(COMPAT.rglob("*.py"))]:
        assert "FROZEN COMPATIBILITY FIXTURE" in path.read_text().splitlines()[0], path


def test_components_list_and_doctor_warn_once_naming_it(with_compat):
    listed = run_cli("components", "list")
    assert listed.exit_code == 0 and any(line.startswith("compat ") for line in listed.stdout.splitlines())
    warned = [line for line in listed.stderr.splitlines() if "compat" in line]
    assert len(warned) == 1, listed.stderr
    assert warned[0].startswith("warning: plugin compat (agencystack-compat 0.1.0): dashboard_entries reads "
                                "context.base: " + DEPRECATED), warned
    assert run_cli("components", "list", "--json").stderr.count("agencystack-compat") == 1
    doctor = run_cli("doctor", "--json")
    checks = [c for c in json.loads(doctor.stdout) if c["name"] == "plugin api"]
    assert [c["result"] for c in checks if "agencystack-compat" in c["detail"]] == ["warn"], checks


@pytest.mark.engine
@pytest.mark.timeout(1800)  # a test suite of its own: two installs of web + Postgres and a backup round trip
def test_its_own_tests_pass_unchanged_with_deprecation_warnings(compat_site, images, tmp_path):
    """Run as its author runs them (its directory, its pyproject), on the engine, with CI's rule: no skip."""
    env = {**os.environ, "PYTHONPATH": str(compat_site), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "COMPAT_WEB_IMAGE": images["busybox"], "COMPAT_DB_IMAGE": images["postgres"],
           "EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "CI": "true"}
    for name in ("AGENCYSTACK_PLUGINS", "AGENCYSTACK_ROOT", "AGENCYSTACK_HOST_NAMESPACE", "DOMAIN", "CLIENT_ID"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                           "-W", "always::DeprecationWarning", "--basetemp", str(tmp_path / "t")],
                          cwd=COMPAT, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
    assert f"DeprecationWarning: {DEPRECATED}" in done.stdout, done.stdout[-4000:]
    assert "(used by agencystack_compat.plugin)" in done.stdout  # pytest shows the plugin by name


@pytest.mark.engine
def test_it_runs_on_the_real_engine_with_its_tile(with_compat, compat_images, agencystack_engine):
    client = agencystack_engine.client
    first = run_cli("install", "compat", "-c", client)
    assert first.exit_code == 0, first.output
    again = run_cli("install", "compat", "-c", client)
    assert again.exit_code == 0 and "no changes" in again.stdout, again.output
    status = run_cli("status", "compat", "-c", client, "--json")
    assert status.exit_code == 0 and status.json()[0]["state"] == "running", status.stdout
    assert agencystack_engine.get(agencystack_engine.url(f"compat.{client}.localhost")) == (200, "Compat\n")

    def tile() -> tuple:
        document = json.loads((agencystack_engine.root / "clients" / client / "dashboard.json").read_text())
        entry = next(c for c in document["components"] if c["name"] == "compat")
        return entry["entries_error"], [(e["component"], e["title"]) for e in entry["entries"]]

    assert tile() == (None, [("compat", "Compat")])
    # backup, destroy and restore on the real engine: its own tests' assert_backup_roundtrip (run above, CI=true)
