"""What the core does around every component's lifecycle, for programs embedding AgencyStack as for the CLI:
requirements installed first and protected on uninstall (Component.requires), the host checked against
Component.resources once for every component."""

from __future__ import annotations

import json

import pytest

from agencystack import Component, ComponentError, Outcome, Resources, UsageError, hookimpl, lifecycle
from agencystack.context import LifecycleContext
from agencystack.logging import Redactor
from agencystack.plugins import load
from agencystack.settings import GlobalSettings


def open_context(plugins, component, action="install", client="acme"):
    return LifecycleContext.open(plugins=plugins, global_settings=GlobalSettings.load(), component=component,
                                 action=action, redactor=Redactor(), client=client)


def calls(root, client, component):
    path = root / "clients" / client / component / "calls.jsonl"
    return [json.loads(line)["hook"] for line in path.read_text().splitlines()] if path.exists() else []


def test_an_embedding_program_gets_requirements_installed_first(with_plugins, agencystack_env):
    """Through the core's API (no CLI): installing needy installs hello, which it requires, first; once."""
    plugins = load()
    outcome = lifecycle.run(open_context(plugins, "needy"), "install")  # the API embedding programs had before
    assert outcome.summary == "needy for acme: installed"
    assert calls(agencystack_env, "acme", "hello") == ["install"]
    assert calls(agencystack_env, "acme", "needy") == ["install"]
    lifecycle.install(open_context(plugins, "needy"))
    assert calls(agencystack_env, "acme", "hello") == ["install"]  # installed already: not again
    assert calls(agencystack_env, "acme", "needy") == ["install", "install"]


def test_install_through_the_cli_says_what_it_installs_first(with_plugins, agencystack_run, agencystack_env):
    result = agencystack_run("install", "needy", "-c", "acme")
    assert result.exit_code == 0, result.output
    assert "requires hello, which is not installed: installing it first" in result.stderr
    assert result.stdout.strip() == "needy for acme: installed"
    assert calls(agencystack_env, "acme", "hello") == ["install"]


def test_uninstalling_a_required_component_is_refused_unless_forced(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "needy", "-c", "acme").exit_code == 0
    refused = agencystack_run("uninstall", "hello", "-c", "acme")
    assert refused.exit_code == 2, refused.output
    assert refused.stderr == ("error: hello for client acme is required by needy: uninstall it first, or use --force "
                              "(they stop working)\n")
    assert calls(agencystack_env, "acme", "hello") == ["install"]  # nothing was removed
    purge = agencystack_run("uninstall", "hello", "-c", "acme", "--purge")  # refused before asking to confirm
    assert purge.exit_code == 2 and "required by needy" in purge.stderr
    other = agencystack_run("uninstall", "hello", "-c", "beta")  # another client's needy does not need acme's hello
    assert other.exit_code == 0, other.output
    forced = agencystack_run("uninstall", "hello", "-c", "acme", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    outcome = json.loads(forced.stdout)
    assert outcome["details"]["dependents"] == ["needy"] and "warning: needy required hello" in outcome["summary"]
    assert calls(agencystack_env, "acme", "hello") == ["install", "uninstall"]


def test_an_uninstalled_dependent_no_longer_holds_its_requirement(with_plugins, agencystack_run):
    assert agencystack_run("install", "needy", "-c", "acme").exit_code == 0
    assert agencystack_run("uninstall", "needy", "-c", "acme").exit_code == 0  # settings kept: not installed
    assert agencystack_run("uninstall", "hello", "-c", "acme").exit_code == 0


class Needs:
    """In-process plugins: ``big`` asks for more memory than any host has; ``small`` for nothing."""

    def __init__(self):
        self.installed = []

    @hookimpl
    def components(self):
        return [Component(name="big", resources=Resources(min_memory_gb=4096, min_cpus=1)),
                Component(name="picky", resources=Resources(recommended_memory_gb=4096, recommended_cpus=1)),
                Component(name="uses-default")]

    @hookimpl
    def install(self, context):
        if context.component.name == "uses-default":
            return None
        self.installed.append(context.component.name)
        return Outcome(summary="installed")


@pytest.fixture
def needs(agencystack_env):
    plugins = load(only=[])
    plugins.needs = Needs()
    assert plugins.register(plugins.needs, "needs").ok
    return plugins


def test_resources_are_checked_by_the_core_before_the_component_installs(needs, agencystack_env):
    with pytest.raises(ComponentError) as err:
        lifecycle.install(open_context(needs, "big"))
    assert str(err.value).startswith("big needs at least 4096 GB memory and 1 CPUs; this host has ")
    assert needs.needs.installed == []  # the component's own install never ran
    assert not (agencystack_env / "clients" / "acme" / "big").exists()  # nothing written


def test_resources_below_the_recommendation_warn_and_install(needs):
    seen = []
    context = open_context(needs, "picky")
    context.progress = lambda who, message: seen.append((who, message))
    assert lifecycle.install(context).summary == "installed"
    assert [who for who, message in seen if "below upstream's recommendation" in message] == ["picky"]


def test_keycloak_and_posthog_minimums_are_the_cores_to_check():
    """The components declare their needs and leave the check to the core (checked once, for every component)."""
    import inspect

    from agencystack_keycloak import plugin as keycloak
    from agencystack_posthog import plugin as posthog

    for module in (keycloak, posthog):
        assert module.components()[0].resources.min_memory_gb > 0
        assert "resources" not in inspect.getsource(module.install)


def test_a_requirement_that_does_not_exist_is_bad_input(agencystack_env):
    class Orphan:
        @hookimpl
        def components(self):
            return [Component(name="orphan", requires=("nowhere",))]

    plugins = load(only=[])
    assert plugins.register(Orphan(), "orphan").ok
    with pytest.raises(UsageError, match="orphan requires nowhere, which cannot be installed: unknown component"):
        lifecycle.install(open_context(plugins, "orphan"))
