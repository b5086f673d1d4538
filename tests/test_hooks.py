"""Every hook: documented (its docstring is the contract) and exercised by a test named test_hook_<name>."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from agencystack import Component, Outcome, Route, Service, Stack, hookimpl, hookspecs
from agencystack.integrations import DashboardEntry, SsoApplication, SsoGrant
from agencystack.lifecycle import run
from agencystack.plugins import load
from agencystack.results import LogLine, LogRequest
from agencystack.testing import open_context

HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "agencystack_spec"))


def test_every_hook_has_a_contract_docstring():
    assert len(HOOKS) >= 11
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 80, f"hook {name} needs a docstring stating its contract"
        assert "Return" in doc or name == "modify_stack" or "return nothing" in doc, name


def test_every_hook_has_a_test():
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py"))
    missing = [name for name in HOOKS if not re.search(rf"def test_hook_{name}\b", tests)]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


class Sample:
    """A plugin that implements every hook and records what it was given."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def dashboard_entries(self, context):  # targeted: the plugin of the component it describes
        return [DashboardEntry(client=context.client, component="sample", title="Sample")]

    @hookimpl
    def components(self):
        return [Component(name="sample", description="every hook")]

    @hookimpl
    def stack(self, context):
        return Stack(services=[Service(name="web", image="busybox")],
                     routes=[Route(name="ui", service="web", port=80, host="sample.localhost", sso=True)])

    @hookimpl
    def install(self, context):
        self.calls.append(("install", context.client))
        return Outcome(summary="installed")

    @hookimpl
    def status(self, context):
        from agencystack import ComponentStatus

        return ComponentStatus.from_services(context.client, "sample", [])

    @hookimpl
    def logs(self, context, request):
        return iter([LogLine("web", f"line {i}") for i in range(request.tail)])

    @hookimpl
    def restart(self, context, services):
        self.calls.append(("restart", services))
        return Outcome(summary="restarted")

    @hookimpl
    def backup(self, context, archive):
        archive.append("backup")
        return Outcome(summary="backed up")

    @hookimpl
    def restore(self, context, archive):
        return Outcome(summary=f"restored {archive[0]}")

    @hookimpl
    def uninstall(self, context, purge):
        return Outcome(summary=f"removed purge={purge}")

    @hookimpl
    def sso_admin(self, context):
        return f"people of {context.client}"


class Integrations:
    """Another plugin: it amends every stack, provides SSO and dashboard entries."""

    @hookimpl
    def modify_stack(self, context, stack):
        for route in stack.routes:
            stack.service(route.service).labels["test.routed"] = route.host

    @hookimpl
    def sso_protect(self, context, application):
        return SsoGrant(issuer_url=f"https://auth.localhost/realms/{application.client}", client_id=application.host,
                        client_secret_key="KEYCLOAK_CLIENT_SECRET", forward_auth_url="http://sso:4180/",
                        middleware="sso")


@pytest.fixture
def plugins(agencystack_env):
    loaded = load(only=[])
    loaded.sample = Sample()
    assert loaded.register(loaded.sample, "sample").ok
    assert loaded.register(Integrations(), "integrations").ok
    return loaded


def context_for(plugins, action="install", client="acme"):
    return open_context(plugins, "sample", action, client=client)


def test_hook_components(plugins):
    assert plugins.component("sample").description == "every hook"
    record = next(r for r in plugins.records if r.name == "sample")
    assert [c.name for c in record.components] == ["sample"]


def test_hook_stack(plugins):
    stack = context_for(plugins).stack()
    assert [s.name for s in stack.services] == ["web"]


def test_hook_modify_stack(plugins):
    stack = context_for(plugins).stack()
    assert stack.service("web").labels["test.routed"] == "sample.localhost"


def test_hook_install(plugins):
    assert run(context_for(plugins), "install").summary == "installed"
    assert plugins.sample.calls == [("install", "acme")]


def test_hook_status(plugins):
    assert run(context_for(plugins, "status"), "status").state.value == "absent"


def test_hook_logs(plugins):
    lines = list(run(context_for(plugins, "logs"), "logs", request=LogRequest(tail=3)))
    assert lines == [LogLine("web", "line 0"), LogLine("web", "line 1"), LogLine("web", "line 2")]


def test_hook_restart(plugins):
    assert run(context_for(plugins, "restart"), "restart", services=("web",)).summary == "restarted"
    assert plugins.sample.calls == [("restart", ("web",))]


def test_hook_backup(plugins):
    archive = []
    assert run(context_for(plugins, "backup"), "backup", archive=archive).summary == "backed up"
    assert archive == ["backup"]


def test_hook_restore(plugins):
    assert run(context_for(plugins, "restore"), "restore", archive=["from-x"]).summary == "restored from-x"


def test_hook_uninstall(plugins):
    assert run(context_for(plugins, "uninstall"), "uninstall", purge=True).summary == "removed purge=True"


def test_hook_sso_protect(plugins):
    grant = plugins.sso_protect(context_for(plugins), SsoApplication(client="acme", component="sample",
                                                                      host="sample.localhost"))
    assert grant.issuer_url.endswith("/realms/acme") and grant.client_secret_key == "KEYCLOAK_CLIENT_SECRET"


def test_hook_sso_admin(plugins):
    assert run(context_for(plugins), "sso_admin") == "people of acme"


def test_hook_dashboard_entries(plugins):
    entries = plugins.dashboard_entries(context_for(plugins))
    assert [(e.client, e.title) for e in entries] == [("acme", "Sample")]
