# FROZEN COMPATIBILITY FIXTURE (plugin API 1.0.0, 2026-11-27): never edited to follow the code; only a major
# plugin API version may drop it, with an entry in CHANGELOG.md ("Plugin API").
"""Compat's settings: COMPAT_* keys."""

from __future__ import annotations

from typing import Any

from agencystack import ComponentSettings, Domain, generated_secret, hex_token
from pydantic_settings import SettingsConfigDict


class CompatSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="COMPAT_", extra="forbid")

    domain: Domain
    title: str = "Compat"
    db_password: generated_secret(hex_token, 24) = None
    web_image: str = "busybox:1.36"
    db_image: str = "postgres:16-alpine"

    @classmethod
    def derived_defaults(cls, base: Any) -> dict[str, Any]:
        return {"domain": f"compat.{base.domain}"}
