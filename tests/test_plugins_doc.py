"""docs/plugins.md is checked against the code: every hook with its arguments and dispatch, every field of the
stack model and of the component metadata, every EDGE_* setting and every public name."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import agencystack
from agencystack import hookspecs, stack
from agencystack.component import Component, Resources
from agencystack.edge.settings import EdgeSettings
from agencystack.limits import Limits

DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
HOOKS = {name: fn for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "agencystack_spec")}
TARGETED = hookspecs.TARGETED


def section(heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = DOC.index(heading + "\n")
    rest = DOC[start + len(heading):]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def test_every_hook_is_documented_with_its_arguments_and_dispatch():
    documented = dict(re.findall(r"^### `(\w+)\((.*?)\)`$", section("## Hook reference"), re.M))
    assert set(documented) == set(HOOKS)
    for name, fn in HOOKS.items():
        args = ", ".join(inspect.signature(fn).parameters)
        assert documented[name] == args, f"{name}: documented ({documented[name]}), declared ({args})"
        text = section(f"### `{name}({args})`")
        kind = "Targeted" if name in TARGETED else "Broadcast"
        assert text.strip().startswith(kind), f"{name} is {kind.lower()}"
        assert ("firstresult" in text) == bool(fn.agencystack_spec["firstresult"]), f"{name}: firstresult"


@pytest.mark.parametrize("heading, models", [
    ("### Stack", [stack.Stack]), ("### Service", [stack.Service]), ("### Route", [stack.Route]),
    ("### Mount", [stack.Mount]), ("### HealthCheck", [stack.HealthCheck]), ("### HttpProbe", [stack.HttpProbe]),
    ("### Limits", [Limits]),
])
def test_every_field_of_the_stack_model_is_documented(heading, models):
    rows = set(re.findall(r"^\| `(\w+)` \|", section(heading), re.M))
    for model in models:
        assert rows == set(model.model_fields), (heading, set(model.model_fields) ^ rows)


@pytest.mark.parametrize("heading, models", [
    ("### Volume, Network, Port, Logging", [stack.Volume, stack.Network, stack.Port, stack.Logging]),
    ("### Backup parts", [stack.PostgresDump, stack.VolumeArchive, stack.CommandDump, stack.EnvFile]),
])
def test_every_field_of_the_smaller_models_is_documented(heading, models):
    rows = set(re.findall(r"^\| `(\w+\.\w+)` \|", section(heading), re.M))
    assert rows == {f"{m.__name__}.{f}" for m in models for f in m.model_fields}


def test_component_and_resources_fields_are_documented():
    import dataclasses

    rows = set(re.findall(r"^\| `(\w+\.\w+)` \|", section("### Component and Resources"), re.M))
    assert rows == {f"{c.__name__}.{f.name}" for c in (Component, Resources) for f in dataclasses.fields(c)}


def test_every_edge_setting_is_documented():
    rows = set(re.findall(r"^\| `(EDGE_\w+)` \|", section("## The edge (`EDGE_*` settings)"), re.M))
    assert rows == {EdgeSettings.env_key(name) for name in EdgeSettings.model_fields}


def test_every_public_name_is_listed():
    text = section("## The public API")
    missing = [name for name in agencystack.__all__ if f"`{name}`" not in text]
    assert missing == []


def test_the_contracts_name_their_types_fields():
    from dataclasses import fields

    from agencystack.integrations import DashboardEntry, SsoApplication, SsoGrant

    sso, dashboard = section("## The SSO contract"), section("## The dashboard contract")
    for cls, text in ((SsoApplication, sso), (SsoGrant, sso), (DashboardEntry, dashboard)):
        assert [f.name for f in fields(cls) if f"`{f.name}`" not in text] == [], cls.__name__



@pytest.mark.parametrize("context", ["LifecycleContext", "DashboardContext"])
def test_every_member_and_method_of_the_contexts_is_documented(context):
    """What a plugin may use of a context is what "The context" lists: every member the code has and the record
    (tests/data/plugin_api.json) holds, the deprecated ones named as such, with their replacement."""
    import json

    from agencystack import plugin_api

    record = json.loads((Path(__file__).parent / "data" / "plugin_api.json").read_text())["types"][context]
    members = {**plugin_api.current()["types"][context]["members"], **record["members"]}
    text = section("## The context")
    assert [m for m in members if not re.search(rf"`(?:{context}\.)?{m}[`(]", text)] == []
    deprecated = text[text.index("Deprecated since"):]
    assert sorted(m for m, spec in members.items() if spec.get("deprecated")) == sorted(
        m for m in members if f"`{context}.{m}`" in deprecated)


def test_every_helper_and_fixture_of_the_test_kit_is_listed():
    import inspect

    from agencystack import testing

    text = section("## Testing a component (`agencystack.testing`)")
    helpers = [name for name, value in vars(testing).items() if name.startswith("agencystack_") or (
        not name.startswith(("_", "pytest_")) and inspect.isfunction(value) and value.__module__ == testing.__name__)]
    assert "agencystack_engine" in helpers and "run_backup" in helpers
    assert [name for name in helpers if f"`{name}" not in text] == []
