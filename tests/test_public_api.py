"""The public API holds: components and the example plugins import only what ``agencystack/__init__.py`` exports
(their tests may use ``agencystack.testing`` too), every exported name resolves, and the core calls hooks only
through typed methods of :class:`agencystack.plugin_host.Plugins`, never by a hook's name as a string."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import agencystack
from agencystack import hookspecs
from agencystack.plugin_host import Plugins

REPO = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "agencystack_spec"))
TEST_KIT = "agencystack.testing"



def plugin_sources() -> list[Path]:
    """The code of every component distribution (its tests included), example plugin and the compatibility
    fixture."""
    found = [p for p in (REPO / "components").rglob("*.py") if "data" not in p.relative_to(REPO).parts]
    found += list((REPO / "tests" / "fixtures").rglob("*.py")) + list((REPO / "tests" / "compat").rglob("*.py"))
    return sorted(found)


def non_public_imports(path: Path) -> list[str]:
    """``file:line what`` for each import of a core module other than ``agencystack`` (and, in a test file, the
    test kit), and each name imported from ``agencystack`` that it does not export."""
    tree = ast.parse(path.read_text(), str(path))
    is_test = path.name.startswith("test_") or "tests" in path.parts[-3:-1]
    allowed = {"agencystack", TEST_KIT} if is_test else {"agencystack"}
    where = path.relative_to(REPO)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "agencystack":
                problems += [f"{where}:{node.lineno} from agencystack import {alias.name} (not exported)"
                             for alias in node.names if alias.name not in agencystack.__all__]
        else:
            continue
        for module in modules:
            if (module == "agencystack" or module.startswith("agencystack.")) and module not in allowed:
                problems.append(f"{where}:{node.lineno} imports {module}")
    return problems


def test_there_are_plugin_sources_to_check():
    names = {p.relative_to(REPO).as_posix() for p in plugin_sources()}
    assert "components/posthog/agencystack_posthog/plugin.py" in names
    assert "components/keycloak/agencystack_keycloak/gate.py" in names
    assert "tests/fixtures/thirdparty/agencystack_hello/notes.py" in names
    assert "components/keycloak/tests/test_keycloak_stack.py" in names  # component tests are covered too
    assert {"components/posthog/tests/helpers.py", "components/posthog/tests/test_posthog_engine.py",
            "components/posthog/tests/test_posthog_live.py"} <= names  # those on the engine as well
    assert "tests/compat/agencystack_compat/plugin.py" in names


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_components_and_examples_import_only_the_public_api(path):
    assert non_public_imports(path) == []


def test_what_component_new_writes_imports_only_the_public_api(tmp_path, monkeypatch):
    from agencystack import scaffold

    written = [p for p in scaffold.create("sample-app", tmp_path / "sample-app") if p.suffix == ".py"]
    assert {p.name for p in written} >= {"plugin.py", "settings.py", "stack.py", "test_sample_app.py"}
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert [problem for p in written for problem in non_public_imports(p)] == []


def test_the_check_catches_a_private_import(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    bad = tmp_path / "components" / "x" / "agencystack_x" / "plugin.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from agencystack import hookimpl, Stack\nfrom agencystack.state import ComponentDir\n"
                   "import agencystack.context\nfrom agencystack import load_everything\n"
                   "from agencystack.testing import CliResult\n")
    assert non_public_imports(bad) == [
        "components/x/agencystack_x/plugin.py:2 imports agencystack.state",
        "components/x/agencystack_x/plugin.py:3 imports agencystack.context",
        "components/x/agencystack_x/plugin.py:4 from agencystack import load_everything (not exported)",
        "components/x/agencystack_x/plugin.py:5 imports agencystack.testing",  # the test kit: in tests only
    ]


@pytest.mark.parametrize("name", agencystack.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(agencystack, name) is not None


def test_what_the_examples_need_is_exported():
    for name in ("Domain", "PortNumber", "hex_token", "urlsafe_token", "generated_secret", "EmptyMeans", "Component",
                 "Resources", "Stack", "PostgresDump", "EnvFile", "lifecycle", "ComponentDir"):
        assert name in agencystack.__all__, name


def test_every_hook_has_a_typed_method_on_plugins():
    for name in HOOKS:
        member = inspect.getattr_static(Plugins, name, None)
        assert member is not None, f"Plugins has no method for hook {name}"
        if name not in ("components", "bundles"):  # discovery: what the hooks answered, without a context
            params = list(inspect.signature(getattr(Plugins, name)).parameters)[1:]
            spec = list(inspect.signature(getattr(hookspecs, name)).parameters)
            assert set(params) <= set(spec) and "context" in params, (name, params, spec)


def test_the_core_never_calls_a_hook_by_its_name():
    """No ``call("install", ...)``, ``subset_hook_caller("stack", ...)`` or ``pm.hook.x`` outside the plugin host (plugin_host.py)."""
    found = []
    for path in sorted((REPO / "agencystack").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                named = node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in HOOKS
                if node.func.attr in ("call", "subset_hook_caller", "_targeted") and named:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if (isinstance(node, ast.Attribute) and node.attr == "hook" and path.name != "plugin_host.py"
                    and isinstance(node.value, ast.Attribute) and node.value.attr in ("pm", "_pm")):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []
