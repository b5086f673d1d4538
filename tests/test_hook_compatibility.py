"""The hook API's compatibility policy (docs/plugins.md), enforced over hookspecs.py against the API of the last
release (tests/data/hook_api.json): within a major version hooks and arguments are only added, never removed or
renamed, and no hook's firstresult changes; a deprecated hook or argument warns through pluggy when implemented."""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import pluggy
import pytest

import agencystack
from agencystack import hookimpl, hookspecs

RECORDED = json.loads((Path(__file__).parent / "data" / "hook_api.json").read_text())


def current_api(module=hookspecs) -> dict:
    return {name: {"args": list(inspect.signature(fn).parameters), "firstresult": fn.agencystack_spec["firstresult"],
                   "warn": fn.agencystack_spec.get("warn_on_impl"),
                   "warn_args": fn.agencystack_spec.get("warn_on_impl_args") or {}}
            for name, fn in vars(module).items() if inspect.isfunction(fn) and hasattr(fn, "agencystack_spec")}


def breaking_changes(recorded: dict, current: dict, recorded_public: list[str], public: list[str]) -> list[str]:
    """What a release of the same major version may not do to the recorded API."""
    found = []
    for name, spec in recorded.items():
        if name not in current:
            found.append(f"hook {name} removed")
            continue
        missing = [a for a in spec["args"] if a not in current[name]["args"]]
        if missing:
            found.append(f"hook {name} lost argument(s) {', '.join(missing)}")
        if spec["firstresult"] != current[name]["firstresult"]:
            found.append(f"hook {name} changed firstresult")
    found += [f"public name {n} removed" for n in recorded_public if n not in public]
    return found


def major(version: str) -> int:
    return int(version.split(".")[0])


def test_the_hook_api_keeps_the_last_releases_promises():
    if major(agencystack.__version__) > major(RECORDED["release"]):
        pytest.skip("a new major release may drop deprecated hooks: record its API in tests/data/hook_api.json")
    assert breaking_changes(RECORDED["hooks"], current_api(), RECORDED["public"], agencystack.__all__) == []


def test_a_removed_hook_or_argument_or_a_changed_dispatch_is_caught():
    recorded = {"install": {"args": ["context"], "firstresult": True}, "gone": {"args": [], "firstresult": False},
                "status": {"args": ["context", "verbose"], "firstresult": True},
                "logs": {"args": ["context"], "firstresult": False}}
    current = {"install": {"args": ["context", "new_one"], "firstresult": True},  # an added argument: fine
               "status": {"args": ["context"], "firstresult": True},
               "logs": {"args": ["context"], "firstresult": True}}
    assert breaking_changes(recorded, current, ["Stack", "Old"], ["Stack"]) == [
        "hook gone removed", "hook status lost argument(s) verbose", "hook logs changed firstresult",
        "public name Old removed"]


def test_every_deprecation_says_since_when_and_what_instead():
    for name, spec in current_api().items():
        for warning in [spec["warn"], *spec["warn_args"].values()]:
            if warning is None:
                continue
            assert isinstance(warning, DeprecationWarning), name
            assert "deprecated since" in str(warning) and "removed in" in str(warning), name


def test_a_deprecated_hook_warns_the_plugin_that_implements_it():
    """The mechanism the policy names (pluggy's warn_on_impl), on a hook specification like ours."""
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
