"""PostHog's settings: what the operator may set (POSTHOG_*) and the secrets generated once per client."""

from __future__ import annotations

from typing import Any

from agencystack.settings import ComponentSettings, Domain, PortNumber, generated_secret, hex_token
from pydantic_settings import SettingsConfigDict


class PostHogSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="POSTHOG_", extra="forbid")

    domain: Domain
    port: PortNumber = 8000
    secret: generated_secret(hex_token, 48) = None  # Django SECRET_KEY (upstream: hex of 48 random bytes)

    @classmethod
    def derived_defaults(cls, base: Any) -> dict[str, Any]:
        return {"domain": f"posthog.{base.domain}"}
