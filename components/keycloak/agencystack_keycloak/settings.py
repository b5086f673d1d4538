"""Keycloak's settings (KEYCLOAK_*): public host, image pin, and secrets generated once per client."""

from __future__ import annotations

from typing import Any

from agencystack.settings import ComponentSettings, Domain, generated_secret, hex_token, urlsafe_token
from pydantic_settings import SettingsConfigDict


class KeycloakSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="KEYCLOAK_", extra="forbid")

    domain: Domain
    image: str = "quay.io/keycloak/keycloak:26.4"
    postgres_image: str = "postgres:15.12-alpine"
    realm: str = ""  # default: the client id (one realm per client)
    admin_user: str = "admin"
    admin_password: generated_secret(urlsafe_token, 32) = None
    db_password: generated_secret(hex_token, 24) = None

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        return {"domain": f"auth.{global_settings.domain}"}
