"""The SSO gate Keycloak gives a protected component: one confidential OIDC client per (client, component) in the
client's realm, and an oauth2-proxy in the component's stack that Traefik's forwardAuth asks about every request.

The issuer URL problem, and the choice made: the browser must see Keycloak at its public URL (``KC_HOSTNAME``),
and the token's ``iss`` is that URL; oauth2-proxy runs inside the engine, where the public name may not resolve
(or resolve to the host's own public address: hairpin NAT; or, for ``*.localhost``, to the container itself). So
oauth2-proxy keeps the public issuer for *checking* (``--oidc-issuer-url``, the browser's ``--login-url``) and
talks to Keycloak directly on the shared edge network for *its own* calls (``--skip-oidc-discovery`` with
``--redeem-url``, ``--oidc-jwks-url``, ``--profile-url``/``--validate-url`` at Keycloak's container, port 8080).
Keycloak issues the same ``iss`` on both paths because ``KC_HOSTNAME`` is a full URL (backchannel dynamic off).
No DNS, certificate or hairpin arrangement is needed, in production or in tests.

Secrets (the client secret read from Keycloak, the cookie secret generated once) are kept in Keycloak's own
directory, ``<root>/clients/<client>/keycloak/sso/<component>.env`` (0600), and reach oauth2-proxy only through
its container environment (``OAUTH2_PROXY_CLIENT_SECRET``/``_COOKIE_SECRET`` from ``${SSO_...}``), never its
command line or the rendered compose file.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import urlsplit

from agencystack import ComponentError, Limits, Route, Service, SsoGrant

NAME = "keycloak"
PROXY = "sso-proxy"
PROXY_PORT = 4180
SECRET_KEY, COOKIE_KEY = "SSO_CLIENT_SECRET", "SSO_COOKIE_SECRET"
NO_PROXY = "127.0.0.1/32"  # --trusted-proxy-ip when the edge's address is unknown: nobody on the network
ROUTE_PRIORITY = 200  # above the public ingestion routes (100) and the UI catch-all (10)


class Keycloak:
    """The client's installed Keycloak, seen from another component's context (or its own)."""

    def __init__(self, context):
        self.client = context.client
        self.dir = context.state_root.component(context.client, NAME)
        self.settings = context.settings if context.component.name == NAME else context.sibling(NAME).settings
        context.add_secret(*self.settings.secret_values())
        self.realm = self.settings.realm_name(context.client)
        self.public_url = context.public_url(self.settings.domain).rstrip("/")
        self.issuer = f"{self.public_url}/realms/{self.realm}"
        self.internal = f"http://{context.client}_{NAME}-keycloak-1:8080/realms/{self.realm}"
        self.via = context.edge_address
        self._context = context

    @classmethod
    def installed(cls, context) -> Keycloak | None:
        """The client's Keycloak if it is installed (as the core defines it: ``ComponentDir.installed``)."""
        return cls(context) if context.state_root.component(context.client, NAME).installed else None

    def admin(self):
        """The admin REST client: at Keycloak's container (its address on a network of this host's engine, looked
        up now) unless ``KEYCLOAK_ADMIN_PUBLIC`` routes the admin API on the public host (then through the edge)."""
        from agencystack_keycloak.admin import Admin

        password = self.settings.admin_password.get_secret_value()
        if self.settings.admin_public:
            return Admin(self.public_url, self.via, self.settings.admin_user, password)
        found = self._context.engine.addresses(f"{self.client}_{NAME}", "keycloak")
        return Admin(self.public_url, next(iter(sorted(found.values())), None), self.settings.admin_user, password,
                     direct=True)

    def converge_realm(self, admin) -> tuple[bool, list[str]]:
        """The client's realm made once and its session and brute-force settings converged: (created, fields
        changed)."""
        created = admin.ensure_realm(self.realm, self.client)
        return created, admin.ensure_realm_policy(self.realm, self.settings.realm_policy())

    # -- per-component secrets ----------------------------------------------------------------------------------
    def secrets_file(self, component: str):
        return self.dir.path / "sso" / f"{component}.env"

    def read_secrets(self, component: str) -> dict[str, str]:
        from agencystack import parse_env

        path = self.secrets_file(component)
        return parse_env(path.read_text()) if path.is_file() else {}

    def save_secrets(self, component: str, values: dict[str, str]) -> None:
        from agencystack import atomic_write, ensure_dir

        current = self.read_secrets(component)
        if current == {**current, **values}:
            return
        ensure_dir(self.dir.path)
        ensure_dir(self.dir.path / "sso")
        merged = {**current, **values}
        atomic_write(self.secrets_file(component), "".join(f"{k}={v}\n" for k, v in sorted(merged.items())))

    def protected(self) -> list[str]:
        """Components of this client that hold an OIDC client (a secrets file)."""
        folder = self.dir.path / "sso"
        return sorted(p.stem for p in folder.glob("*.env")) if folder.is_dir() else []

    # -- convergence --------------------------------------------------------------------------------------------
    def converge(self, component: str, app_url: str) -> None:
        """Create or update the component's OIDC client; keep (never rotate) its secret; cookie secret once."""
        with self.admin() as admin:
            admin.token()
            self.converge_realm(admin)
            uuid = admin.ensure_client(self.realm, component, [f"{app_url}/oauth2/callback"], [app_url],
                                       [f"{app_url}/*"])
            secret = admin.client_secret(self.realm, uuid)
        cookie = self.read_secrets(component).get(COOKIE_KEY) or secrets.token_urlsafe(24)[:32]
        self.save_secrets(component, {SECRET_KEY: secret, COOKIE_KEY: cookie})

    def rotate(self, component: str) -> None:
        with self.admin() as admin:
            found = admin.find_client(self.realm, component)
            if found is None:
                raise ComponentError(f"{component} for {self.client} has no OIDC client in realm {self.realm!r} "
                                     f"(install {component} first)")
            secret = admin.rotate_secret(self.realm, found["id"])
        self.save_secrets(component, {SECRET_KEY: secret})


def protect(context, application, stack):
    """The ``sso_protect`` answer: the grant, with the gate added to ``stack`` once secrets exist."""
    from agencystack_keycloak.admin import Unreachable

    if context.component.name == NAME:
        return None
    keycloak = Keycloak.installed(context)
    if keycloak is None:
        return None
    component = application.component
    middleware = f"{context.client}-{component}-sso"
    grant = SsoGrant(issuer_url=keycloak.issuer, client_id=component, client_secret_key=SECRET_KEY,
                     forward_auth_url=f"http://{context.project}-{PROXY}-1:{PROXY_PORT}/", middleware=middleware)
    if context.action == "install":
        try:
            keycloak.converge(component, application.url)
        except Unreachable as exc:
            context.log.warning(f"SSO pending: {exc}")
            if not keycloak.read_secrets(component):
                return replace(grant, state="pending", detail=f"{exc}; re-run install")
    found = keycloak.read_secrets(component)
    if SECRET_KEY not in found or COOKIE_KEY not in found:
        return replace(grant, state="pending", detail="no OIDC client yet: run 'agencystack install "
                                                      f"{component} -c {context.client}'")
    context.add_env({SECRET_KEY: found[SECRET_KEY], COOKIE_KEY: found[COOKIE_KEY]})
    roles = application.roles or keycloak.settings.roles_for(component)
    stack.services = [*stack.services, proxy_service(keycloak, application, grant, roles)]
    stack.routes = [*stack.routes, Route(name="sso", service=PROXY, port=PROXY_PORT, host=application.host,
                                         prefixes=["/oauth2"], priority=ROUTE_PRIORITY, public=True)]
    return grant


#: the gate is small (oauth2-proxy: ~6 MiB RSS); bounded like every service (POSTHOG_SSO_PROXY_MEMORY, ... override)
LIMITS = Limits(memory="64m", memory_reservation="16m", cpus=0.25, pids=128, min_memory="16m")


def proxy_service(keycloak: Keycloak, application, grant: SsoGrant, roles: tuple[str, ...]) -> Service:
    from agencystack import HealthCheck, ref

    app = urlsplit(application.url)
    oidc = f"{keycloak.internal}/protocol/openid-connect"
    env = {
        "OAUTH2_PROXY_PROVIDER": "keycloak-oidc",
        "OAUTH2_PROXY_CLIENT_ID": grant.client_id,
        "OAUTH2_PROXY_CLIENT_SECRET": ref(SECRET_KEY),
        "OAUTH2_PROXY_COOKIE_SECRET": ref(COOKIE_KEY),
        "OAUTH2_PROXY_COOKIE_NAME": f"_sso_{application.component}",
        "OAUTH2_PROXY_COOKIE_SECURE": "true" if app.scheme == "https" else "false",
        "OAUTH2_PROXY_OIDC_ISSUER_URL": grant.issuer_url,
        "OAUTH2_PROXY_SKIP_OIDC_DISCOVERY": "true",
        "OAUTH2_PROXY_LOGIN_URL": f"{grant.issuer_url}/protocol/openid-connect/auth",
        "OAUTH2_PROXY_REDEEM_URL": f"{oidc}/token",
        "OAUTH2_PROXY_OIDC_JWKS_URL": f"{oidc}/certs",
        "OAUTH2_PROXY_PROFILE_URL": f"{oidc}/userinfo",
        "OAUTH2_PROXY_VALIDATE_URL": f"{oidc}/userinfo",
        # revocation: a session older than this is refreshed at Keycloak's token endpoint on its next request; a
        # removed or disabled user, or a session ended in Keycloak, fails the refresh (invalid_grant) and the gate
        # drops the cookie: the login again. Keycloak's access tokens (5 min) outlive the period.
        "OAUTH2_PROXY_COOKIE_REFRESH": f"{keycloak.settings.sso_revalidate_seconds}s",
        "OAUTH2_PROXY_COOKIE_EXPIRE": f"{keycloak.settings.session_max_seconds}s",
        # sign-out (/oauth2/sign_out) ends the Keycloak session too (the end-session endpoint with the session's
        # id token as hint), not only this gate's cookie: the next visit asks for the password
        "OAUTH2_PROXY_BACKEND_LOGOUT_URL": f"{oidc}/logout?id_token_hint={{id_token}}",
        "OAUTH2_PROXY_REDIRECT_URL": f"{application.url}{application.redirect_path}",
        "OAUTH2_PROXY_HTTP_ADDRESS": f"0.0.0.0:{PROXY_PORT}",
        # behind the edge: X-Forwarded-Host/-Uri/-Proto (where a login returns to) and -For are taken from the
        # edge's address only; another container on the shared edge network cannot forge them. Unknown edge
        # (render; edge down): loopback, i.e. no one -- oauth2-proxy's own default would be to trust everyone.
        "OAUTH2_PROXY_REVERSE_PROXY": "true",
        "OAUTH2_PROXY_TRUSTED_PROXY_IPS": ",".join(application.edge_addresses) or NO_PROXY,
        "OAUTH2_PROXY_REAL_CLIENT_IP_HEADER": "X-Forwarded-For",
        "OAUTH2_PROXY_UPSTREAMS": "static://202",
        "OAUTH2_PROXY_EMAIL_DOMAINS": "*",
        "OAUTH2_PROXY_SET_XAUTHREQUEST": "true",
        "OAUTH2_PROXY_CODE_CHALLENGE_METHOD": "S256",
        "OAUTH2_PROXY_SKIP_PROVIDER_BUTTON": "true",
        "OAUTH2_PROXY_WHITELIST_DOMAINS": app.netloc,
    }
    if roles:
        env["OAUTH2_PROXY_ALLOWED_ROLES"] = ",".join(roles)
    mw = f"traefik.http.middlewares.{grant.middleware}.forwardauth"
    return Service(name=PROXY, image=keycloak.settings.oauth2_proxy_image, environment=env, labels={
        f"{mw}.address": grant.forward_auth_url,
        f"{mw}.trustForwardHeader": "true",
        f"{mw}.authResponseHeaders": "X-Auth-Request-User,X-Auth-Request-Email,X-Auth-Request-Preferred-Username",
    }, start_timeout=60, limits=LIMITS,
        # oauth2-proxy's own /ping; wget is busybox's (the -alpine images upstream, the test image: busybox)
        healthcheck=HealthCheck(test=["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PROXY_PORT}/ping"],
                                interval=5, timeout=3, retries=6))
