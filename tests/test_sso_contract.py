"""The SSO contract's core side (agencystack/sso.py) without an engine: a route asking for SSO is protected by the
provider that answers, reported unprotected when none does, disabled by the opt-out, fail-closed while pending;
public routes are never touched; no secret reaches the rendered compose file."""

from __future__ import annotations

import pytest

from agencystack import (Component, ComponentSettings, Route, Service, Stack, SsoGrant, hookimpl, ref)
from agencystack.edge import routing
from agencystack.plugins import load
from agencystack.settings import generated_secret
from agencystack.testing import open_context
from pydantic_settings import SettingsConfigDict


class AppSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="APP_", extra="forbid")
    sso: bool = True
    secret: generated_secret() = None


class App:
    @hookimpl
    def components(self):
        return [Component(name="app", settings=AppSettings)]

    @hookimpl
    def stack(self, context):
        if context.component.name != "app":
            return None
        host = "app.acme.localhost"
        return Stack(services=[Service(name="web", image="echo", environment={"S": ref("APP_SECRET")}),
                               Service(name="capture", image="echo")],
                     routes=[Route(name="capture", service="capture", port=80, host=host, prefixes=["/e"],
                                   public=True, priority=100),
                             Route(name="web", service="web", port=80, host=host, sso=True, priority=10)])


class Provider:
    def __init__(self, state="protected"):
        self.state, self.calls = state, []

    @hookimpl
    def sso_protect(self, context, application, stack):
        self.calls.append((context.action, application))
        context.add_env({"SSO_CLIENT_SECRET": "provider-secret-value"})
        stack.services = [*stack.services, Service(name="sso-proxy", image="gate",
                                                   environment={"X": ref("SSO_CLIENT_SECRET")})]
        return SsoGrant(issuer_url="http://auth.acme.localhost/realms/acme", client_id="app",
                        client_secret_key="SSO_CLIENT_SECRET", forward_auth_url="http://gate:4180/",
                        middleware="acme-app-sso", state=self.state, detail="not ready")


def context(providers=(), action="plan", flags=None):
    plugins = load(only=[])
    assert plugins.register(App(), "app").ok
    for i, provider in enumerate(providers):
        assert plugins.register(provider, f"provider{i}").ok
    return open_context(plugins, "app", action, client="acme", flags=flags)


def test_without_a_provider_the_route_is_reported_unprotected_and_served_as_is(agencystack_env):
    ctx = context()
    stack = ctx.stack()
    assert ctx.sso.state == "unprotected" and ctx.sso.routes == ("web",) and "no identity provider" in ctx.sso.detail
    assert all(not r.middlewares for r in stack.routes)


def test_a_provider_protects_sso_routes_and_never_public_ones(agencystack_env):
    provider = Provider()
    ctx = context([provider])
    stack = ctx.stack()
    routes = {r.name: r for r in stack.routes}
    assert routes["web"].middlewares == ["acme-app-sso"] and routes["capture"].middlewares == []
    assert ctx.sso.state == "protected"
    app = provider.calls[0][1]
    assert (app.client, app.component, app.host, app.url) == ("acme", "app", "app.acme.localhost",
                                                              "http://app.acme.localhost")
    labels = stack.service("web").labels
    router = routing.router_name("acme", "app", "web")
    assert labels[f"traefik.http.routers.{router}.middlewares"] == "acme-app-sso"
    assert f"traefik.http.routers.{routing.router_name('acme', 'app', 'capture')}.middlewares" not in \
        stack.service("capture").labels


def test_the_provider_secret_is_resolved_for_containers_but_never_rendered(agencystack_env):
    from agencystack.engine import compose

    ctx = context([Provider()])
    rendered = compose.render(ctx.deployment())
    assert "provider-secret-value" not in rendered and "${SSO_CLIENT_SECRET}" in rendered
    assert ctx.env()["SSO_CLIENT_SECRET"] == "provider-secret-value"
    assert ctx._redactor.text("x provider-secret-value y") == "x *** y"


def test_pending_still_attaches_the_middleware_so_protected_paths_fail_closed(agencystack_env):
    ctx = context([Provider(state="pending")])
    stack = ctx.stack()
    assert ctx.sso.state == "pending" and ctx.sso.detail == "not ready"
    assert next(r for r in stack.routes if r.name == "web").middlewares == ["acme-app-sso"]


def test_opt_out_setting_disables_sso(agencystack_env):
    provider = Provider()
    ctx = context([provider], flags={"APP_SSO": "false"})
    stack = ctx.stack()
    assert ctx.sso.state == "disabled" and "APP_SSO=false" in ctx.sso.detail
    assert provider.calls == [] and all(not r.middlewares for r in stack.routes)


def test_status_shows_the_sso_row(agencystack_env):
    from agencystack.defaults import sso_row
    from agencystack.integrations import SsoState

    row = sso_row(SsoState("unprotected", "no identity provider"))
    assert (row.name, row.state.value, row.detail) == ("sso", "absent", "unprotected: no identity provider")
    assert sso_row(SsoState("protected", "login via x")).state.value == "running"
    assert sso_row(SsoState("pending", "x")).state.value == "starting"


@pytest.mark.parametrize("cmd", [["sso", "users", "list", "-c", "acme"], ["sso", "rotate", "posthog", "-c", "acme"]])
def test_sso_commands_need_an_installed_identity_provider(agencystack_run, cmd):
    result = agencystack_run(*cmd)
    assert result.exit_code == 2 and "keycloak is not installed for acme" in result.output, result.output


def test_sso_users_add_refuses_a_non_address(agencystack_run):
    result = agencystack_run("sso", "users", "add", "-c", "acme", "not-an-address")
    assert result.exit_code == 2 and "not an e-mail address" in result.output


def test_edge_addresses_come_from_the_engine_list_call_and_render_asks_no_engine(agencystack_env, monkeypatch):
    """The address a gate trusts forwarded headers from: Traefik's on the edge network, as one container list call
    reports it (running containers only); ``render`` never asks the engine."""
    from types import SimpleNamespace

    from agencystack.engine.observe import Observed
    from agencystack.sso import edge_addresses

    listed = Observed.from_list({"Id": "x", "Names": ["/host_edge-traefik-1"], "State": "running", "Labels": {},
                                 "NetworkSettings": {"Networks": {"agencystack_edge": {"IPAddress": "10.9.0.2"},
                                                                  "other": {"IPAddress": ""}}}})
    assert listed.addresses == {"agencystack_edge": "10.9.0.2"}
    asked = []

    class Engine:
        def addresses(self, project, service):
            asked.append((project, service))
            return {"agencystack_edge": "10.9.0.2", "agencystack_elsewhere": "10.8.0.2"}

    from agencystack.settings import GlobalSettings

    context = SimpleNamespace(action="install", engine=Engine(), global_settings=GlobalSettings.load())
    assert edge_addresses(context) == ("10.9.0.2",) and asked == [("host_edge", "traefik")]
    assert edge_addresses(SimpleNamespace(action="render")) == ()


def test_install_waits_until_the_edge_sends_the_ui_to_the_login():
    """The edge applies new labels after the containers changed: until a protected route answers with the redirect
    into the issuer, deploy waits (bounded); an edge that keeps serving the UI without login is one error line."""
    import http.server
    import threading
    from types import SimpleNamespace

    import pytest

    from agencystack import ComponentError, Route
    from agencystack.sso import wait_for_gate

    issuer = "http://auth.acme.localhost/realms/acme"
    answers = ["open", "open", "login"]
    seen = []

    class Edge(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.headers["Host"], self.path))
            gated = (answers.pop(0) if answers else "open") == "login"
            self.send_response(302 if gated else 200)
            if gated:
                self.send_header("Location", f"{issuer}/protocol/openid-connect/auth?client_id=posthog")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Edge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    routes = [Route(name="web", service="web", port=8000, host="app.acme.localhost", sso=True),
              Route(name="e", service="capture", port=3000, host="app.acme.localhost", paths=["/e"], public=True)]
    progress = []
    context = SimpleNamespace(stack=lambda: SimpleNamespace(routes=routes), client="acme",
                              component=SimpleNamespace(name="posthog"), progress=lambda *a: progress.append(a),
                              public_url=lambda host, path: f"http://{host}:{port}{path}",
                              edge_address="127.0.0.1")
    try:
        wait_for_gate(context, issuer, timeout=30)
        assert seen == [(f"app.acme.localhost:{port}", "/agencystack-sso-check")] * 3  # never a public route
        assert progress[-1][0] == "sso" and progress[-1][1].startswith("login in front")
        with pytest.raises(ComponentError, match=r"the edge does not send .* to the login within 3s "
                                                 r"\(last: HTTP 200 \(served without login\)\); re-run"):
            wait_for_gate(context, issuer, timeout=3)
    finally:
        server.shutdown()
