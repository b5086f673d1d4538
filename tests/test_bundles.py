"""Bundles without an engine: the hook contributes them (merged per name), the core orders their components by
``requires`` and the SSO relation, and bad bundles or clients files are refused in one line (exit 2)."""

from __future__ import annotations

import pytest

from agencystack import Bundle, Component, hookimpl
from agencystack.bundle import resolve
from agencystack.clients_file import load as load_clients
from agencystack.errors import UsageError


class _Provider:
    @hookimpl
    def components(self):
        return [Component("idp", provides=("sso",), requires=("edge",)), Component("app-a", requires=("edge",)),
                Component("app-b"), Component("idp-db")]

    @hookimpl
    def bundles(self):
        return [Bundle("suite", ("app-a", "idp", "app-b"))]


class _Joiner:
    @hookimpl
    def bundles(self):
        return [Bundle("suite", ("idp-db", "app-a")), Bundle("edge", ("app-b",))]


@pytest.fixture
def plugins(agencystack_plugins):
    agencystack_plugins.register(_Provider(), "provider")
    agencystack_plugins.register(_Joiner(), "joiner")
    return agencystack_plugins


def test_hook_bundles(plugins):
    assert plugins.bundle("suite").components  # contributed through the hook by a plugin, found by name
    assert plugins.bundle("nosuch") is None


def test_contributions_to_one_bundle_merge_and_a_bundle_never_shadows_a_component(plugins):
    bundles = plugins.bundles()
    assert sorted(bundles["suite"].components) == ["app-a", "app-b", "idp", "idp-db"]  # each member once
    assert "edge" not in bundles  # a component's name: the component wins
    assert "demo-core" in bundles and set(bundles["demo-core"].components) == {"edge", "keycloak", "dashboard",
                                                                               "posthog"}


def test_requirements_first_and_the_identity_provider_before_what_it_protects(plugins):
    waits = resolve(plugins.components, plugins.bundle("suite"))
    assert set(waits) == {"edge", "idp", "app-a", "app-b", "idp-db"}
    assert waits["edge"] == ()  # per-host, and what the provider itself requires: never after the provider
    assert waits["idp"] == ("edge",)
    assert waits["app-a"] == ("edge", "idp")  # requires + the SSO relation
    assert waits["app-b"] == ("idp",) and waits["idp-db"] == ("idp",)
    order = list(waits)
    assert order.index("edge") < order.index("idp") < order.index("app-a")


def test_a_bundle_naming_an_unknown_component_is_bad_input(plugins):
    with pytest.raises(UsageError, match="names component\\(s\\) no plugin provides: nosuch"):
        resolve(plugins.components, Bundle("broken", ("app-b", "nosuch")))


def test_clients_file(tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text("clients:\n  - id: acme\n    domain: Acme.COM\n    settings:\n      TIER_BASE_DELAY: 1\n"
                    "  - id: globex\n")
    specs = load_clients(path)
    assert [(s.id, s.domain, s.settings) for s in specs] == [("acme", "acme.com", {"TIER_BASE_DELAY": "1"}),
                                                            ("globex", None, {})]
    for text, message in (("clients: [{id: Bad_Id}]", "invalid client id"),
                          ("clients: [{id: a}, {id: a}]", "listed twice"),
                          ("clients: [{id: a, dommain: x.com}]", "unknown key\\(s\\) dommain"),
                          ("clients: {", "not valid YAML"), ("42", "expected a list of clients")):
        path.write_text(text)
        with pytest.raises(UsageError, match=message):
            load_clients(path)
    with pytest.raises(UsageError, match="does not exist"):
        load_clients(tmp_path / "missing.yaml")


def test_install_of_a_bundle_with_bad_input_changes_nothing(with_plugins, agencystack_run, agencystack_env, tmp_path):
    result = agencystack_run("install", "tiers", "-c", "acme", "--set", "NOPE_X=1")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == ["error: setting NOPE_X (client acme) belongs to no component of this "
                                                  "install (tier-base, tier-left, tier-top, tier-right)"]
    clients = tmp_path / "clients.yaml"
    clients.write_text("clients:\n  - id: good\n  - id: bad\n    settings: {TIER_TOP_DELAY: soon}\n")
    result = agencystack_run("install", "tiers", "--clients", str(clients))
    assert result.exit_code == 2, result.output
    assert "TIER_TOP_DELAY" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (agencystack_env / "clients").exists()  # nothing written for anyone
    result = agencystack_run("install", "tiers", "--domain", "x.com")
    assert result.exit_code == 2 and "--domain names one component's host" in result.stderr


def test_demo_core_installs_the_edge_then_keycloak_then_dashboard_and_posthog_together(agencystack_plugins):
    waits = resolve(agencystack_plugins.components, agencystack_plugins.bundle("demo-core"))
    assert list(waits)[:2] == ["edge", "keycloak"]
    assert waits["keycloak"] == ("edge",)
    assert waits["dashboard"] == waits["posthog"] == ("edge", "keycloak")  # neither waits for the other


def test_a_clients_domain_names_its_hosts_and_settings_reach_their_component(agencystack_env):
    from agencystack.bulk import contexts as _contexts
    from agencystack.bundle import resolve
    from agencystack.clients_file import ClientSpec
    from agencystack.invocation import Invocation

    session = Invocation(quiet=True)
    waits = resolve(session.plugins.components, session.plugins.bundle("demo-core"))
    spec = ClientSpec("acme", "acme.com", {"DASHBOARD_PROBE_INTERVAL": "5"})
    contexts = _contexts(session, spec, waits, {})
    assert {name: getattr(c.settings, "domain", None) for name, c in contexts.items() if name != "edge"} == {
        "keycloak": "auth.acme.com", "dashboard": "dashboard.acme.com", "posthog": "posthog.acme.com"}
    assert contexts["dashboard"].settings.probe_interval == 5
    assert contexts["posthog"].flags["POSTHOG_DOMAIN"] == "posthog.acme.com"  # a flag: saved on install
    with pytest.raises(UsageError, match="setting NOPE_X \\(client acme\\) belongs to no component"):
        _contexts(session, ClientSpec("acme", None, {"NOPE_X": "1"}), waits, {})
