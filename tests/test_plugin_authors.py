"""What a plugin author sees of their mistakes, read where a person reads it (the console script's stdout and
stderr, or ``run_cli``'s): a misspelled hook argument, a raising ``dashboard_entries``, a contested name, broken
plugins in ``components list --json``, and ``AGENCYSTACK_TRACE_PLUGINS=1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _site(tmp_path_factory: pytest.TempPathFactory, *fixtures: str) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), *(str(FIXTURES / f) for f in fixtures)],
                   check=True, capture_output=True)
    return site


@pytest.fixture(scope="module")
def authors_site(tmp_path_factory):
    """agencystack-authors (tile-fail, gated-probe) and agencystack-impostor, pip-installed for real."""
    return _site(tmp_path_factory, "authors", "impostor")


@pytest.fixture
def with_authors(with_plugins, authors_site, monkeypatch):
    monkeypatch.syspath_prepend(str(authors_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(authors_site), os.environ["PYTHONPATH"]]))
    return authors_site


def agencystack(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["agencystack", *argv], capture_output=True, text=True, env={**os.environ, **env},
                          timeout=120)


def test_a_misspelled_hook_argument_is_one_line_naming_plugin_hook_and_arguments(with_plugins):
    listing = agencystack("components", "list")
    assert listing.returncode == 0, listing.stderr
    [line] = [line for line in listing.stdout.splitlines() if line.startswith("bad-args ")]
    assert "BROKEN: install(ctx) in agencystack_broken.bad_args: hook 'install' has no argument(s) 'ctx' " \
           "(misspelled? its arguments: context)" in line
    assert "PluginValidationError" not in listing.stdout and "hookimpl definition" not in listing.stdout
    assert any(line.startswith("hello ") and "BROKEN" not in line for line in listing.stdout.splitlines())
    [misspelled] = [line for line in listing.stdout.splitlines() if line.startswith("misspelled ")]
    assert "unknown hook(s) instal (misspelled? did you mean install?)" in misspelled


def test_broken_plugins_in_json_carry_entry_point_and_distribution(with_plugins):
    rows = json.loads(agencystack("components", "list", "--json").stdout)
    broken = {r["name"]: r for r in rows if r["status"] == "broken"}
    assert set(broken) == {"bad-args", "broken-import", "misspelled"}
    assert broken["bad-args"] == {"name": "bad-args", "plugin": "bad-args", "module": "agencystack_broken.bad_args",
                                  "distribution": "agencystack-broken", "version": "0.0.1", "status": "broken",
                                  "error": broken["bad-args"]["error"]}
    assert all(r["name"] and r["distribution"] for r in rows)


def test_a_raising_dashboard_hook_is_a_console_warning_naming_the_plugin(with_authors, agencystack_run,
                                                                         agencystack_env):
    for argv in (("install", "tile-fail", "-c", "acme"), ("install", "tile-fail", "-c", "acme", "--json")):
        result = agencystack_run(*argv)
        assert result.exit_code == 0, result.output
        [warning] = [line for line in result.stderr.splitlines() if "dashboard" in line]
        assert "no tile for tile-fail of client acme: plugin tile-fail (agencystack-authors 0.0.2): " \
               "dashboard_entries failed: RuntimeError: the tile's author made a mistake" in warning
    assert json.loads(result.stdout)["summary"] == "tile-fail for acme: installed"  # --json's stdout stays JSON
    document = json.loads((agencystack_env / "clients/acme/dashboard.json").read_text())
    [tile] = [c for c in document["components"] if c["name"] == "tile-fail"]
    assert tile["entries_error"] == "RuntimeError: the tile's author made a mistake"


def test_the_contested_hint_drops_the_third_party_claimant_never_the_first_party_one(with_authors):
    rows = json.loads(agencystack("components", "list", "--json").stdout)
    hints = {(r["name"], r["plugin"]): r["error"] for r in rows if r["status"] == "contested"}
    posthog = hints[("posthog", "posthog")]
    assert "AGENCYSTACK_PLUGINS=-aa-impostor keeps posthog (agencystack-posthog" in posthog
    assert "=-posthog" not in posthog and ",-posthog" not in posthog
    # two third parties: either may be the one to keep, and the hint says how to keep each
    hello = hints[("hello", "hello")]
    assert "AGENCYSTACK_PLUGINS=-hello keeps aa-impostor" in hello
    assert "AGENCYSTACK_PLUGINS=-aa-impostor keeps hello" in hello
    listing = agencystack("components", "list").stdout
    assert "AGENCYSTACK_PLUGINS=-posthog" not in listing


def test_trace_plugins_logs_each_hook_call_on_stderr(with_authors):
    quiet = agencystack("components", "list", "--json")
    assert quiet.returncode == 0 and '"trace"' not in quiet.stderr  # unset: nothing
    traced = agencystack("install", "tile-fail", "-c", "acme", AGENCYSTACK_TRACE_PLUGINS="1",
                         AGENCYSTACK_PLUGINS="tile-fail")
    assert traced.returncode == 0, traced.stderr
    lines = [json.loads(line) for line in traced.stderr.splitlines() if line.startswith('{"trace"')]
    assert all(set(line) == {"trace", "hook", "component", "plugin", "plugins", "duration_ms", "outcome"}
               and line["duration_ms"] >= 0 for line in lines)
    assert {"hook": "components", "plugin": "tile-fail", "outcome": "ok"}.items() <= \
        next(line for line in lines if line["hook"] == "components" and line["plugin"]).items()
    install = next(line for line in lines if line["hook"] == "install")
    assert install["component"] == "tile-fail" and install["plugin"] == "tile-fail"
    assert install["plugins"][0] == "agencystack.lifecycle" and install["outcome"] == "ok"
    tile = next(line for line in lines if line["hook"] == "dashboard_entries")
    assert tile["plugin"] == "tile-fail" and tile["outcome"] == "raised RuntimeError"
    assert "the tile's author made a mistake" not in "".join(json.dumps(line) for line in lines)  # no messages


@pytest.mark.engine
def test_a_probe_behind_a_route_asking_for_sso_is_warned_at_plan(with_authors, agencystack_engine, agencystack_run):
    client = agencystack_engine.client
    result = agencystack_run("plan", "gated-probe", "-c", client)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "health probe" in line]
    assert len(warned) == 1, result.stderr
    assert f"health probe http://gated.{client}.localhost/healthz is served by route 'ui', which asks for SSO" \
           in warned[0] and "public=True" in warned[0]
    assert "/ping" not in result.stderr  # served by its public route: nothing to say


def test_doctor_warns_about_broken_and_contested_plugins(with_authors, agencystack_run):
    checks = {c["name"]: c for c in agencystack_run("doctor", "--json").json()}
    assert checks["plugin bad-args"]["result"] == "warn"
    assert "hook 'install' has no argument(s) 'ctx'" in checks["plugin bad-args"]["detail"]
    assert "AGENCYSTACK_PLUGINS=-bad-args" in checks["plugin bad-args"]["fix"]
    assert checks["component posthog"]["result"] == "warn"
    assert "AGENCYSTACK_PLUGINS=-aa-impostor" in checks["component posthog"]["detail"]


def test_the_route_serving_a_path_is_the_edge_s_choice():
    from agencystack import HttpProbe, Route, Service, Stack
    from agencystack.edge.routing import serving
    from agencystack.sso import gated_probes

    routes = [Route(name="ui", service="web", port=80, host="a.localhost", sso=True),
              Route(name="health", service="web", port=80, host="a.localhost", paths=["/_health"], public=True),
              Route(name="api", service="web", port=80, host="a.localhost", prefixes=["/api"])]
    assert serving(routes, "a.localhost", "/_health").name == "health"
    assert serving(routes, "a.localhost", "/api/x").name == "api"
    assert serving(routes, "a.localhost", "/apix").name == "ui"
    assert serving(routes, "b.localhost", "/") is None
    stack = Stack(services=[Service(name="web", image="x")], routes=routes,
                  probes=[HttpProbe(url="http://a.localhost/_health"), HttpProbe(url="http://a.localhost/")])
    assert [(p.url, r.name) for p, r in gated_probes(stack)] == [("http://a.localhost/", "ui")]


def test_the_documented_status_json_shape_is_the_code_s():
    import dataclasses
    import re

    from agencystack.results import ComponentStatus, ServiceStatus

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    text = doc[doc.index("## `status --json`"):doc.index("## When a plugin is wrong")]
    component, service = text.split("Each of `services`:")
    assert set(re.findall(r"^\| `(\w+)` \|", component, re.M)) == {f.name for f in dataclasses.fields(ComponentStatus)}
    assert set(re.findall(r"^\| `(\w+)` \|", service, re.M)) == {f.name for f in dataclasses.fields(ServiceStatus)}


def test_the_documented_test_kit_names_exist():
    import agencystack.testing as kit

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    for name in ("run_cli", "use_root", "root_environment", "open_context", "dashboard_context", "free_port",
                 "assert_idempotent", "assert_backup_roundtrip"):
        assert f"`{name}(" in doc and callable(getattr(kit, name)), name


def test_the_kit_builds_the_dashboard_context_the_core_builds(with_plugins, agencystack_plugins,
                                                              agencystack_dashboard_context):
    context = agencystack_dashboard_context("keycloak", client="acme", manifest={"url": "http://x.localhost/"})
    assert context.client == "acme" and context.component.name == "keycloak" and context.installed == ("keycloak",)
    assert context.url == "http://x.localhost/" and context.manifest["url"] == "http://x.localhost/"
    assert context.edge_origin == {"network": "agencystack_edge", "http_port": 80, "https_port": 443}
    assert context.public_url("auth.acme.localhost") == "http://auth.acme.localhost/"
    [tile] = agencystack_plugins.dashboard_entries(context)
    assert tile.links["Account"] == "http://x.localhost/realms/acme/account/"  # from context.url
    hello = agencystack_dashboard_context("hello", client="acme", flags={"HELLO_GREETING": "it's $(x)"},
                                          manifest={"last_action": {"action": "install"}})
    assert [t.title for t in agencystack_plugins.dashboard_entries(hello)] == ["Hello: it's $(x)"]
