"""The plugin API's contract (docs/plugins.md, "Compatibility policy"), enforced against its record,
tests/data/plugin_api.json (agencystack/plugin_api.py writes it): every hook with its arguments' types, its dispatch
and what it returns, and every member of what a hook receives and returns. Adding is free; removing, renaming or
retyping fails naming the member, unless agencystack/deprecations.py lists it."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pluggy
import pytest

import agencystack
from agencystack import deprecations, hookimpl, plugin_api
from agencystack.deprecations import DEPRECATIONS, Deprecation

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "tests" / "data" / "plugin_api.json"
RECORDED = json.loads(RECORD.read_text())


def major(version: str) -> int:
    return int(version.split(".")[0])


@pytest.fixture(scope="module")
def current() -> dict:
    return plugin_api.current()


def test_the_code_keeps_every_recorded_promise(current):
    if major(agencystack.PLUGIN_API_VERSION) > major(RECORDED["plugin_api_version"]):
        pytest.skip("a new major plugin API may drop what was deprecated: regenerate tests/data/plugin_api.json")
    assert plugin_api.breaking(RECORDED, current, DEPRECATIONS) == []


def test_the_record_holds_each_hook_and_what_it_receives_and_returns():
    hooks, types = RECORDED["hooks"], RECORDED["types"]
    assert hooks["dashboard_entries"] == {"arguments": {"context": "DashboardContext"},
                                          "returns": "list[DashboardEntry]", "dispatch": "targeted",
                                          "firstresult": False}
    assert hooks["backup"]["arguments"] == {"context": "LifecycleContext", "archive": "ArchiveWriter"}
    assert hooks["sso_protect"]["dispatch"] == "broadcast" and hooks["sso_protect"]["firstresult"] is True
    for name in ("LifecycleContext", "DashboardContext", "DashboardEntry", "Stack", "Service", "Route", "Component",
                 "ComponentSettings", "Outcome", "ComponentStatus", "ServiceStatus", "LogRequest", "LogLine",
                 "SsoApplication", "SsoGrant", "SsoAdmin", "ArchiveWriter", "ArchiveReader", "Bundle"):
        assert name in types, name
    context = types["LifecycleContext"]["members"]
    assert context["record_fact"]["parameters"]["key"]["type"] == "str"
    assert context["facts"]["deprecated"] is True and context["components"]["kind"] == "property"
    assert types["DashboardContext"]["members"]["component"]["type"] == "Component"
    assert types["Service"]["members"]["image"] == {"kind": "field", "type": "str", "required": True}


def test_a_member_renamed_or_retyped_in_the_code_fails_naming_it(current, monkeypatch):
    from agencystack.context import LifecycleContext
    from agencystack.integrations import DashboardEntry
    from agencystack.stack import Route

    monkeypatch.delattr(LifecycleContext, "record_fact")  # as if renamed: the record still has it
    monkeypatch.setitem(DashboardEntry.__annotations__, "title", "int")
    monkeypatch.setitem(Route.__annotations__, "host", "bytes")
    now = plugin_api.current()
    assert plugin_api.breaking(RECORDED, now, DEPRECATIONS) == [
        "DashboardEntry.title: type 'str' -> 'int'",
        "LifecycleContext.record_fact removed",
        "Route.host: type 'Domain' -> 'bytes'" if RECORDED["types"]["Route"]["members"]["host"]["type"] == "Domain"
        else f"Route.host: type {RECORDED['types']['Route']['members']['host']['type']!r} -> 'bytes'",
    ]
    allowed = (*DEPRECATIONS, Deprecation("LifecycleContext.record_fact", "1.2.0", "2.0.0", "use remember()"),
               Deprecation("DashboardEntry.title", "1.2.0", "2.0.0", "use name"),
               Deprecation("Route.host", "1.2.0", "2.0.0", "use hosts"))
    assert plugin_api.breaking(RECORDED, now, allowed) == []


def test_each_kind_of_break_in_a_modified_record_is_named(current):
    """The comparison run against a modified copy of the record: what the copy has that the code lacks."""
    recorded = copy.deepcopy(current)
    context = recorded["types"]["DashboardContext"]["members"]
    context["customer"] = context.pop("client")  # the code "renamed" customer to client
    recorded["types"]["Stack"]["members"]["services"]["type"] = "list[Container]"
    recorded["hooks"]["install"]["firstresult"] = False
    recorded["hooks"]["restart"]["arguments"]["services"] = "list[str]"
    recorded["hooks"]["gone"] = {"arguments": {}, "returns": "None", "dispatch": "broadcast", "firstresult": False}
    recorded["public"].append("Removed")
    recorded["types"]["Outcome"]["members"].pop("summary")  # the code added a required field
    recorded["types"]["LifecycleContext"]["members"]["limits"]["parameters"]["default"]["required"] = False
    assert plugin_api.breaking(recorded, current) == [
        "public name Removed removed",
        "hook install: firstresult False -> True",
        "hook restart: argument services type 'list[str]' -> 'tuple[str, ...]'",
        "hook gone removed",
        "DashboardContext.customer removed",
        "DashboardContext.client added as a required field",  # a rename is both: constructors break too
        "LifecycleContext.limits: parameter default now required",
        "Outcome.summary added as a required field",
        "Stack.services: type 'list[Container]' -> 'list[Service]'",
    ]
    allowed = [Deprecation(what, "1.1.0", "2.0.0", "x") for what in (
        "public Removed", "hook install", "hook restart(services)", "hook gone", "DashboardContext.customer",
        "DashboardContext.client", "LifecycleContext.limits", "Outcome.summary", "Stack.services")]
    assert plugin_api.breaking(recorded, current, allowed) == []


def test_adding_is_free(current):
    recorded = copy.deepcopy(current)
    recorded["types"]["DashboardEntry"]["members"].pop("code")  # the code added an optional field
    recorded["hooks"]["logs"]["arguments"].pop("request")  # and an argument
    recorded["hooks"].pop("bundles")  # and a hook
    recorded["public"].remove("SettingsConfigDict")
    assert plugin_api.breaking(recorded, current) == []


def test_every_deprecation_names_its_versions_and_replacement_and_exists_in_the_record():
    version = tuple(int(n) for n in agencystack.PLUGIN_API_VERSION.split("."))
    for d in DEPRECATIONS:
        since, removal = (tuple(int(n) for n in v.split(".")) for v in (d.since, d.removal))
        assert since <= version < removal and removal[0] > since[0], d  # kept at least until the next major
        assert d.replacement and "deprecated since plugin API" in d.message("x"), d
        if "." in d.what and "(" not in d.what:
            owner, member = d.what.split(".")
            assert RECORDED["types"][owner]["members"][member]["deprecated"] is True, d


def test_a_deprecated_context_member_still_works_and_warns_naming_the_plugin_and_the_replacement(
        agencystack_context):
    context = agencystack_context("edge")
    with pytest.warns(DeprecationWarning) as caught:
        context.facts["url"] = "http://x"
        assert "edge" in context.plugins.components
        context.redactor.add("s3cr3t-value")
    messages = [str(w.message) for w in caught]
    assert messages == [
        f"LifecycleContext.facts is deprecated since plugin API 1.1.0, removed in 2.0.0: use "
        f"context.record_fact(key, value) (used by {__name__})",
        f"LifecycleContext.plugins is deprecated since plugin API 1.1.0, removed in 2.0.0: use context.components "
        f"(the known components by name) (used by {__name__})",
        f"LifecycleContext.redactor is deprecated since plugin API 1.1.0, removed in 2.0.0: use "
        f"context.add_secret(*values) (used by {__name__})"]
    assert all(w.filename == __file__ for w in caught)  # pointing at the plugin's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context.record_fact("realm", "acme")
        context.add_secret("another-secret")
        assert context.components["edge"].per_host
    assert context._facts == {"url": "http://x", "realm": "acme"}
    assert context._redactor.text("a s3cr3t-value and another-secret") == "a *** and ***"


def test_a_nov_27_dashboard_call_with_a_context_of_the_client_is_answered_through_the_kit_and_warned(
        agencystack_plugins):
    from types import SimpleNamespace

    old = SimpleNamespace(client="acme", base=agencystack.GlobalSettings.load())  # the Nov-27 contract
    with pytest.warns(DeprecationWarning, match=r"dashboard_entries\(context without component\)"):
        assert agencystack_plugins.dashboard_entries(old) == []  # nothing is installed for acme here


def test_plugins_loaded_without_a_way_to_open_a_clients_contexts_refuse_that_call_in_one_line(agencystack_env):
    from types import SimpleNamespace

    from agencystack.plugins import load

    old = SimpleNamespace(client="acme", base=agencystack.GlobalSettings.load())
    with pytest.warns(DeprecationWarning), pytest.raises(agencystack.UsageError, match="context of a client") as no:
        load().dashboard_entries(old)
    assert "\n" not in str(no.value)


def test_the_deprecation_table_is_one_immutable_tuple():
    assert isinstance(DEPRECATIONS, tuple)
    with pytest.raises(AttributeError):
        DEPRECATIONS[0].since = "0.1"  # frozen
    assert deprecations.find("DashboardContext.base").removal == "2.0.0"


def test_the_changelog_records_the_plugin_api_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    section = changelog[changelog.index("## Plugin API"):]
    versions = re.findall(r"^### (\d+\.\d+\.\d+)", section, re.M)
    assert versions[0] == agencystack.PLUGIN_API_VERSION
    assert "1.0.0" in versions  # the oldest supported (tests/compat is written against it)
    for d in DEPRECATIONS:
        assert f"`{d.what}`" in section, d.what


def test_the_hookspecs_annotations_import_nothing():
    code = ("import sys, agencystack.hookspecs; print(sorted(m for m in sys.modules if m.startswith('agencystack')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['agencystack', 'agencystack.hookspecs', 'agencystack.lazy', 'agencystack.version']"


def test_the_generator_writes_what_the_test_reads(tmp_path):
    target = tmp_path / "plugin_api.json"
    subprocess.run([sys.executable, "-m", "agencystack.plugin_api", "--write", str(target)], check=True)
    written = json.loads(target.read_text())
    assert written["plugin_api_version"] == agencystack.PLUGIN_API_VERSION
    assert plugin_api.breaking(RECORDED, written, DEPRECATIONS) == []


def test_a_deprecated_hook_warns_the_plugin_that_implements_it():
    """The mechanism the policy names for a whole hook or argument (pluggy's warn_on_impl)."""
    spec = pluggy.HookspecMarker("agencystack")

    class Specs:
        @spec(warn_on_impl=DeprecationWarning("old_hook is deprecated since 0.2, removed in 1.0: use new_hook"))
        def old_hook(self, context):
            """A hook on its way out."""

    class Plugin:
        @hookimpl
        def old_hook(self, context):
            return None

    pm = pluggy.PluginManager("agencystack")
    pm.add_hookspecs(Specs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm.register(Plugin())
    assert [str(w.message) for w in caught] == ["old_hook is deprecated since 0.2, removed in 1.0: use new_hook"]


def test_a_plugin_importing_a_private_module_loads_and_is_named_once(tmp_path, monkeypatch, agencystack_env):
    """A distribution (entry point and all) whose plugin imports agencystack.state and agencystack.engine.labels:
    it loads and serves its component; components list and doctor name the plugin and each module, once."""
    from agencystack.testing import run_cli

    site = tmp_path / "site"
    (site / "agencystack_private").mkdir(parents=True)
    (site / "agencystack_private" / "__init__.py").write_text(
        "from agencystack import Component, hookimpl\n"
        "from agencystack.state import StateRoot\n"
        "from agencystack import engine\n"
        "import agencystack.engine.labels\n\n"
        "@hookimpl\ndef components():\n    return [Component(name='private', description='reaches in')]\n")
    info = site / "agencystack_private-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: agencystack-private\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[agencystack.components]\nprivate = agencystack_private\n")
    monkeypatch.syspath_prepend(str(site))
    listed = run_cli("components", "list")
    assert listed.exit_code == 0 and any(line.startswith("private ") for line in listed.stdout.splitlines())
    warned = [line for line in listed.stderr.splitlines() if "agencystack-private" in line]
    assert warned == [f"warning: plugin private (agencystack-private 0.3.0) imports {module}, which is not part of "
                      "the plugin API (import from 'agencystack' only, and 'agencystack.testing' in tests): it may "
                      "change in any release"
                      for module in ("agencystack.state", "agencystack.engine", "agencystack.engine.labels")]
    monkeypatch.delitem(sys.modules, "agencystack_private")  # a new process, as each command is: imported afresh
    doctor = json.loads(run_cli("doctor", "--json").stdout)
    assert sum("agencystack-private" in c["detail"] for c in doctor if c["name"] == "plugin api") == 3
