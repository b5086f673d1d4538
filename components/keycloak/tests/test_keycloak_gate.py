"""Keycloak's side of the SSO contract without an engine: which state a protected component gets from the saved
state alone (plan and status never call Keycloak), what the gate looks like, and that no secret is rendered or
put on a command line."""

from __future__ import annotations

from agencystack import StateRoot
from agencystack.testing import compose_file, open_context


def posthog(plugins, action="plan", **flags):
    return open_context(plugins, "posthog", action, client="acme", flags=flags)


def keycloak_installed(root, secrets: dict[str, str] | None = None):
    kdir = StateRoot(root).component("acme", "keycloak")
    kdir.save_env({"KEYCLOAK_ADMIN_PASSWORD": "admin-password-value", "KEYCLOAK_DB_PASSWORD": "db-password-value"})
    kdir.record("install", "ok")
    if secrets:
        (kdir.path / "sso").mkdir(mode=0o700)
        (kdir.path / "sso" / "posthog.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return kdir


def test_without_keycloak_posthog_ui_is_unprotected(agencystack_plugins, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    ctx = posthog(agencystack_plugins)
    ctx.stack()
    assert ctx.sso.state == "unprotected"


def test_keycloak_installed_but_not_converged_is_pending_and_closed(agencystack_plugins, agencystack_env,
                                                                    monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    keycloak_installed(agencystack_env)
    ctx = posthog(agencystack_plugins)
    stack = ctx.stack()
    assert ctx.sso.state == "pending" and "run 'agencystack install posthog -c acme'" in ctx.sso.detail
    web = next(r for r in stack.routes if r.name == "web")
    assert web.middlewares == ["acme-posthog-sso"]
    assert "sso-proxy" not in {s.name for s in stack.services}  # the middleware has no definition: closed


def test_converged_gate_from_saved_state(agencystack_plugins, agencystack_env, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    monkeypatch.setattr("agencystack.sso.edge_addresses", lambda context: ("10.9.0.2",))
    secrets = {"SSO_CLIENT_SECRET": "client-secret-value-123", "SSO_COOKIE_SECRET": "cookie-secret-value-0123456789ab"}
    keycloak_installed(agencystack_env, secrets)
    ctx = posthog(agencystack_plugins)
    stack = ctx.stack()
    assert ctx.sso.state == "protected"
    proxy = stack.service("sso-proxy")
    env = proxy.environment
    assert env["OAUTH2_PROXY_OIDC_ISSUER_URL"] == "http://auth.acme.localhost/realms/acme"
    assert env["OAUTH2_PROXY_LOGIN_URL"].startswith("http://auth.acme.localhost/realms/acme/")
    assert env["OAUTH2_PROXY_REDEEM_URL"] == ("http://acme_keycloak-keycloak-1:8080/realms/acme/protocol/"
                                              "openid-connect/token")
    assert env["OAUTH2_PROXY_REDIRECT_URL"] == "http://posthog.acme.localhost/oauth2/callback"
    assert env["OAUTH2_PROXY_COOKIE_SECURE"] == "false"
    assert env["OAUTH2_PROXY_CLIENT_SECRET"] == "${SSO_CLIENT_SECRET}" and not proxy.command
    # sessions re-checked at Keycloak every KEYCLOAK_SSO_REVALIDATE_SECONDS; sign-out ends the Keycloak session
    assert env["OAUTH2_PROXY_COOKIE_REFRESH"] == "60s" and env["OAUTH2_PROXY_COOKIE_EXPIRE"] == "36000s"
    assert env["OAUTH2_PROXY_BACKEND_LOGOUT_URL"] == ("http://acme_keycloak-keycloak-1:8080/realms/acme/protocol/"
                                                      "openid-connect/logout?id_token_hint={id_token}")
    # forwarded headers from the edge's address only (the engine's answer, as the core passes it on)
    assert env["OAUTH2_PROXY_REVERSE_PROXY"] == "true" and env["OAUTH2_PROXY_TRUSTED_PROXY_IPS"] == "10.9.0.2"
    labels = proxy.labels
    assert labels["traefik.http.middlewares.acme-posthog-sso.forwardauth.address"] == \
        "http://acme_posthog-sso-proxy-1:4180/"
    routes = {r.name: r for r in stack.routes}
    assert routes["sso"].prefixes == ["/oauth2"] and routes["sso"].public and routes["sso"].priority == 200
    for route in routes.values():
        assert route.middlewares == (["acme-posthog-sso"] if route.name == "web" else [])
    rendered = compose_file(ctx)
    for value in secrets.values():
        assert value not in rendered
    assert ctx.deployment().env["SSO_CLIENT_SECRET"] == secrets["SSO_CLIENT_SECRET"]


def test_opt_out(agencystack_plugins, agencystack_env, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    keycloak_installed(agencystack_env, {"SSO_CLIENT_SECRET": "x" * 20, "SSO_COOKIE_SECRET": "y" * 32})
    ctx = posthog(agencystack_plugins, POSTHOG_SSO="false")
    stack = ctx.stack()
    assert ctx.sso.state == "disabled" and "sso-proxy" not in {s.name for s in stack.services}


def test_uninstalled_keycloak_no_longer_protects(agencystack_plugins, agencystack_env, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    kdir = keycloak_installed(agencystack_env, {"SSO_CLIENT_SECRET": "x" * 20, "SSO_COOKIE_SECRET": "y" * 32})
    kdir.record("uninstall", "ok")
    ctx = posthog(agencystack_plugins)
    ctx.stack()
    assert ctx.sso.state == "unprotected"


def test_allowed_roles_setting(agencystack_plugins, agencystack_env, monkeypatch):
    monkeypatch.setenv("DOMAIN", "localhost")  # default hosts: <component>.<client>.<DOMAIN>
    kdir = keycloak_installed(agencystack_env, {"SSO_CLIENT_SECRET": "x" * 20, "SSO_COOKIE_SECRET": "y" * 32})
    kdir.save_env({"KEYCLOAK_ALLOWED_ROLES": "posthog=analyst,admin;other=x"})
    stack = posthog(agencystack_plugins).stack()
    assert stack.service("sso-proxy").environment["OAUTH2_PROXY_ALLOWED_ROLES"] == "analyst,admin"


def test_an_unknown_edge_address_trusts_no_forwarded_headers(agencystack_plugins, agencystack_env, monkeypatch):
    """No edge address (render has no engine; the edge is down): oauth2-proxy's own default would trust every peer;
    the gate trusts loopback only, i.e. no one on the network."""
    monkeypatch.setenv("DOMAIN", "localhost")
    monkeypatch.setattr("agencystack.sso.edge_addresses", lambda context: ())
    keycloak_installed(agencystack_env, {"SSO_CLIENT_SECRET": "x" * 20, "SSO_COOKIE_SECRET": "y" * 32})
    stack = posthog(agencystack_plugins).stack()
    assert stack.service("sso-proxy").environment["OAUTH2_PROXY_TRUSTED_PROXY_IPS"] == "127.0.0.1/32"
