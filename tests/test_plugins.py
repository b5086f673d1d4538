"""Plugin discovery: third-party distributions through entry points, isolation of broken plugins, the env filter."""

from __future__ import annotations

import json
import subprocess

import pytest

import os
import sys
from pathlib import Path

from agencystack import hookimpl
from agencystack.plugins import load

IMPOSTOR = Path(__file__).parent / "fixtures" / "impostor"


def test_third_party_distribution_is_discovered_with_its_version(with_plugins, agencystack_run):
    result = agencystack_run("components", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout) if r["status"] == "ok"}
    assert rows["hello"]["distribution"] == "agencystack-hello"
    assert rows["hello"]["version"] == "1.2.3"
    assert {"posthog", "keycloak"} <= set(rows)


def test_broken_plugins_are_listed_with_their_error_and_never_fatal(with_plugins, agencystack_run):
    result = agencystack_run("components", "list", "--json")
    assert result.exit_code == 0
    broken = {r["plugin"]: r["error"] for r in json.loads(result.stdout) if r["status"] == "broken"}
    assert "ModuleNotFoundError" in broken["broken-import"]
    assert "instal" in broken["misspelled"] and "misspelled" in broken["misspelled"]
    assert "context" in broken["bad-args"] or "ctx" in broken["bad-args"]
    # every other command keeps working
    assert agencystack_run("--help").exit_code == 0
    installed = agencystack_run("install", "hello", "--client-id", "acme")
    assert installed.exit_code == 0, installed.output


@pytest.fixture
def with_impostor(with_plugins, tmp_path, monkeypatch):
    """The fixture plugins plus one (agencystack-impostor) claiming ``posthog`` and ``hello``, loading first."""
    site = tmp_path / "impostor-site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(IMPOSTOR)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ["PYTHONPATH"]]))
    return site


def test_name_clash_picks_no_winner_and_names_both_distributions(with_impostor, agencystack_run):
    rows = json.loads(agencystack_run("components", "list", "--json").stdout)
    ok = {r["name"] for r in rows if r["status"] == "ok"}
    assert "posthog" not in ok and "hello" not in ok and "keycloak" in ok  # the impostor hides nothing
    contested = {(r["name"], r["distribution"]): r["error"] for r in rows if r["status"] == "contested"}
    assert set(contested) == {("posthog", "agencystack-posthog"), ("posthog", "agencystack-impostor"),
                              ("hello", "agencystack-hello"), ("hello", "agencystack-impostor")}
    for (_name, _dist), error in contested.items():
        assert "agencystack-impostor" in error and "AGENCYSTACK_PLUGINS" in error
    for command in (("plan", "posthog", "-c", "acme"), ("install", "hello", "-c", "acme")):
        result = agencystack_run(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "agencystack-impostor" in result.stderr and "agencystack-" + command[1] in result.stderr
    listing = subprocess.run(["agencystack", "components", "list"], capture_output=True, text=True)
    assert listing.returncode == 0 and "CONTESTED" in listing.stdout


def test_operator_resolves_a_clash_by_excluding_a_plugin(with_impostor, monkeypatch, agencystack_run):
    monkeypatch.setenv("AGENCYSTACK_PLUGINS", "-aa-impostor")
    rows = json.loads(agencystack_run("components", "list", "--json").stdout)
    ok = {r["name"]: r["distribution"] for r in rows if r["status"] == "ok"}
    assert ok["posthog"] == "agencystack-posthog" and ok["hello"] == "agencystack-hello"
    assert not [r for r in rows if r["status"] == "contested" or r["plugin"] == "aa-impostor"]
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0


def test_a_plugin_cannot_claim_a_core_component(agencystack_env):
    class Edge:
        @hookimpl
        def components(self):
            from agencystack import Component

            return [Component(name="edge")]

    plugins = load(only=[])
    record = plugins.register(Edge(), "fake-edge", distribution="agencystack-fake")
    assert not record.ok and "provided by the core" in record.error
    assert plugins.components["edge"].name == "edge" and not plugins.contested


def test_broken_plugin_does_not_break_the_console_script(with_plugins):
    help_run = subprocess.run(["agencystack", "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "install" in help_run.stdout
    listing = subprocess.run(["agencystack", "components", "list"], capture_output=True, text=True)
    assert listing.returncode == 0
    assert "BROKEN" in listing.stdout and "hello" in listing.stdout


def test_unknown_component_lists_known_ones_and_broken_plugins(with_plugins, agencystack_run):
    result = agencystack_run("install", "nope")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "unknown component 'nope'" in result.stderr and "hello" in result.stderr and "posthog" in result.stderr
    assert "broken plugins" in result.stderr


def test_env_var_limits_which_plugins_load(with_plugins, monkeypatch, agencystack_run):
    monkeypatch.setenv("AGENCYSTACK_PLUGINS", "hello")
    rows = json.loads(agencystack_run("components", "list", "--json").stdout)
    names = {r["name"] or r["plugin"] for r in rows}
    assert "hello" in names and "posthog" not in names and "broken-import" not in names
    monkeypatch.setenv("AGENCYSTACK_PLUGINS", "")
    rows = json.loads(agencystack_run("components", "list", "--json").stdout)
    assert not [r for r in rows if r["distribution"] != "agencystack"]


def test_lifecycle_call_reaches_only_the_target_components_plugin(agencystack_env):
    from agencystack import Component, Outcome
    from agencystack.lifecycle import run
    from agencystack.testing import open_context

    calls = []

    class Spy:
        def __init__(self, name):
            self.name = name

        @hookimpl
        def components(self):
            return [Component(name=self.name)]

        @hookimpl
        def install(self, context):
            calls.append((self.name, context.component.name))
            return Outcome(summary=f"{self.name} done")

    plugins = load(only=[])
    for name in ("alpha", "beta", "gamma"):
        assert plugins.register(Spy(name), name).ok
    context = open_context(plugins, "beta", "install", client="acme")
    assert run(context, "install").summary == "beta done"
    assert calls == [("beta", "beta")]


def test_every_lifecycle_action_is_wrapped_by_the_core(agencystack_env):
    plugins = load(only=[])
    from agencystack import hookspecs

    for action in ("install", "status", "logs", "restart", "backup", "restore", "uninstall"):
        impls = getattr(plugins._pm.hook, action).get_hookimpls()
        wrappers = [i for i in impls if i.wrapper]
        assert [w.plugin_name for w in wrappers] == ["agencystack.lifecycle"], action
        assert getattr(hookspecs, action).__doc__


@pytest.mark.parametrize("spec", ["agencystack_broken.bad_import"])
def test_plugin_import_error_message_names_the_module(with_plugins, spec):
    plugins = load()
    record = next(r for r in plugins.records if r.name == "broken-import")
    assert not record.ok and "agencystack_does_not_exist" in record.error


def test_invalid_stack_names_plugin_component_and_field_without_pydantic_noise(with_plugins, agencystack_run):
    result = agencystack_run("plan", "badstack", "-c", "acme")
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    line = result.stderr
    assert "faulty (agencystack-hello 1.2.3)" in line and "badstack" in line and "start_timeout" in line
    assert "pydantic" not in line and "unexpected" not in line and "validation error for" not in line
