"""Keycloak's settings (KEYCLOAK_*): public host, version pins, and secrets generated once per client."""

from __future__ import annotations

from typing import Any

from agencystack import (ComponentSettings, Domain, ImageRef, SettingsConfigDict, generated_secret, hex_token,
                         urlsafe_token)

VERSION = "26.7.3"  # the Keycloak release the stack is written for (KC_* options, admin REST semantics)
OAUTH2_PROXY_VERSION = "v7.15.6"


class KeycloakSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="KEYCLOAK_", extra="forbid")

    domain: Domain  # default auth.<DOMAIN>; KC_HOSTNAME is its public URL as the edge serves it
    image: ImageRef = f"quay.io/keycloak/keycloak:{VERSION}"
    #: true for an image pre-built with `kc.sh build` (KC_DB=postgres, KC_HEALTH_ENABLED, KC_CACHE=local):
    #: `start --optimized` skips the build step; upstream's image is not pre-built, so the default is `start`
    optimized: bool = False
    #: seconds Keycloak may take to become ready (a JVM on a busy two-core host can take minutes)
    start_timeout: float = 600
    postgres_image: ImageRef = "postgres:15.12-alpine"
    oauth2_proxy_image: ImageRef = f"quay.io/oauth2-proxy/oauth2-proxy:{OAUTH2_PROXY_VERSION}"
    realm: str = ""  # default: the client id (one realm per client)
    #: realm roles allowed into each protected component, "component=role1,role2;other=role" (empty: any user)
    allowed_roles: str = ""
    admin_user: str = "admin"
    admin_password: generated_secret(urlsafe_token, 32) = None
    db_password: generated_secret(hex_token, 24) = None

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        return {"domain": f"auth.{global_settings.domain}"}

    def realm_name(self, client: str) -> str:
        return self.realm or client

    def roles_for(self, component: str) -> tuple[str, ...]:
        for entry in filter(None, (e.strip() for e in self.allowed_roles.split(";"))):
            name, _, roles = entry.partition("=")
            if name.strip() == component:
                return tuple(r.strip() for r in roles.split(",") if r.strip())
        return ()
