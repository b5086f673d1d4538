"""The dashboard's settings (``DASHBOARD_*``)."""

from __future__ import annotations

from typing import Any


from agencystack import ComponentSettings, Domain, ImageRef, SettingsConfigDict


class DashboardSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="forbid")

    domain: Domain = "dashboard.localhost"
    #: a plain Python 3 image (the server uses the standard library only; its code is mounted read-only)
    image: ImageRef = "python:3.12-slim"
    probe_interval: float = 10.0  # seconds between health probes of the client's components
    max_age: float = 60.0  # a probe older than this is shown as unknown
    usage_ttl: float = 300.0  # seconds a card's usage figures (PostHog's query API) are cached by the server
    sso: bool = True  # behind the client's SSO when Keycloak is installed

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        return {"domain": f"dashboard.{global_settings.domain}"}
