"""Keycloak's settings (KEYCLOAK_*): public host, version pins, and secrets generated once per client."""

from __future__ import annotations

from typing import Annotated, Any

from agencystack import (ComponentSettings, Domain, ImageRef, SettingsConfigDict, generated_secret, hex_token,
                         urlsafe_token)
from pydantic import Field, model_validator

VERSION = "26.7.3"  # the Keycloak release the stack is written for (KC_* options, admin REST semantics)
OAUTH2_PROXY_VERSION = "v7.15.6"


class KeycloakSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="KEYCLOAK_", extra="forbid")

    domain: Domain  # default auth.<client>.<DOMAIN> (the core's rule); KC_HOSTNAME is its public URL
    image: ImageRef = f"quay.io/keycloak/keycloak:{VERSION}"
    #: true for an image pre-built with `kc.sh build` (KC_DB=postgres, KC_HEALTH_ENABLED, KC_CACHE=local):
    #: `start --optimized` skips the build step; upstream's image is not pre-built, so the default is `start`
    optimized: bool = False
    #: seconds Keycloak may take to become ready (a JVM on a busy two-core host can take minutes)
    start_timeout: float = 600
    postgres_image: ImageRef = "postgres:15.12-alpine"
    #: the -alpine variant: its busybox wget runs the gate's health check (the default image has no shell or tool)
    oauth2_proxy_image: ImageRef = f"quay.io/oauth2-proxy/oauth2-proxy:{OAUTH2_PROXY_VERSION}-alpine"
    #: the page the auth host answers while Keycloak restarts: busybox's httpd (with CGI) and wget
    retry_image: ImageRef = "busybox:1.37"
    realm: str = ""  # default: the client id (one realm per client)
    #: realm roles allowed into each protected component, "component=role1,role2;other=role" (empty: any user)
    allowed_roles: str = ""
    #: route the admin console, the admin REST API and the master realm on the public auth host (default: not
    #: routed, 404; the core reaches the admin API at Keycloak's container on the edge network)
    admin_public: bool = False
    # -- sessions (applied to the client's realm, and to each gate) --------------------------------------------
    #: seconds between a gate's re-checks of its session with Keycloak (a refresh at the token endpoint): a
    #: removed or disabled user, or an ended session, loses access at the next request after at most this long
    sso_revalidate_seconds: Annotated[int, Field(ge=5, le=60)] = 60
    #: SSO session idle timeout and maximum lifespan (Keycloak's ssoSessionIdleTimeout / ssoSessionMaxLifespan)
    session_idle_seconds: Annotated[int, Field(ge=300)] = 1800
    session_max_seconds: Annotated[int, Field(ge=300)] = 36000
    #: the login page's "remember me" (a session that survives the browser): off
    remember_me: bool = False
    # -- brute-force detection (Keycloak's own, on in every client realm) --------------------------------------
    brute_force_protection: bool = True
    #: failed logins in a row before a temporary lockout
    login_failures: Annotated[int, Field(ge=1, le=100)] = 5
    #: the first lockout's length (it grows with further failures, up to the maximum)
    lockout_seconds: Annotated[int, Field(ge=1)] = 60
    max_lockout_seconds: Annotated[int, Field(ge=1)] = 900
    admin_user: str = "admin"
    admin_password: generated_secret(urlsafe_token, 32) = None
    db_password: generated_secret(hex_token, 24) = None

    @model_validator(mode="after")
    def _consistent(self) -> KeycloakSettings:
        if self.session_max_seconds < self.session_idle_seconds:
            raise ValueError("KEYCLOAK_SESSION_MAX_SECONDS is below KEYCLOAK_SESSION_IDLE_SECONDS")
        if self.max_lockout_seconds < self.lockout_seconds:
            raise ValueError("KEYCLOAK_MAX_LOCKOUT_SECONDS is below KEYCLOAK_LOCKOUT_SECONDS")
        return self

    def realm_policy(self) -> dict[str, Any]:
        """The realm representation's session and brute-force fields these settings decide."""
        return {
            "ssoSessionIdleTimeout": self.session_idle_seconds, "ssoSessionMaxLifespan": self.session_max_seconds,
            "rememberMe": self.remember_me,
            "bruteForceProtected": self.brute_force_protection, "permanentLockout": False,
            "failureFactor": self.login_failures, "waitIncrementSeconds": self.lockout_seconds,
            "maxFailureWaitSeconds": self.max_lockout_seconds,
            # logins faster than a second apart (a script) are locked out as long as a first lockout
            "quickLoginCheckMilliSeconds": 1000, "minimumQuickLoginWaitSeconds": self.lockout_seconds,
            "maxDeltaTimeSeconds": 43200,  # failures older than 12 h are forgotten
        }

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        return {"domain": f"auth.{global_settings.domain}"}

    def product_version(self) -> str:
        """The Keycloak release this client runs, as its image reference pins it: the tag (``26.7.3``), else the
        digest (``sha256:`` and 12 digits), else ``latest`` (what the engine pulls for a reference with neither)."""
        name, _, digest = self.image.partition("@")
        tag = name.rpartition("/")[2].partition(":")[2]  # a registry's :port is before the last slash
        return tag or (digest[:19] if digest else "latest")

    def realm_name(self, client: str) -> str:
        return self.realm or client

    def roles_for(self, component: str) -> tuple[str, ...]:
        for entry in filter(None, (e.strip() for e in self.allowed_roles.split(";"))):
            name, _, roles = entry.partition("=")
            if name.strip() == component:
                return tuple(r.strip() for r in roles.split(",") if r.strip())
        return ()
