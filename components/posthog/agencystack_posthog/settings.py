"""PostHog's settings: what the operator may set (POSTHOG_*) and the secrets generated once per client.

Every image is pinned by a setting, and ``POSTHOG_REGISTRY_MIRROR`` (e.g. ``mirror.example.com/``) is put in front
of each of them. Defaults follow upstream's hobby deployment at :data:`UPSTREAM_REF` (the commit whose
docker-compose.hobby.yml this stack reproduces). The app image is tagged per commit; the Node image and each Rust
image with the newest per-commit tag at or before the ref (node_image.py, rust_images.py), as upstream publishes them
only for commits that touch them; livestream alone has no verified per-commit tag (see ``livestream_image``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from agencystack import (ComponentSettings, Domain, EmptyMeans, ImageRef, PortNumber, SecretStr, SettingsConfigDict,
                         generated_secret, hex_token, urlsafe_token)
from pydantic import AfterValidator

UPSTREAM_REF = "00fa00d9bf03f5bef2e784d23e3dbdf9c025c892"


def _commit_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{40}", value):
        raise ValueError("must be a full 40-character commit id (tags and branches move, so they pin nothing)")
    return value


CommitId = Annotated[str, AfterValidator(_commit_id)]


def rfc3339_now() -> str:
    """The current time as RFC 3339 in UTC, to the second (``2026-11-26T10:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PostHogSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="POSTHOG_", extra="forbid")

    domain: Domain
    port: PortNumber = 8000  # where web listens in its container; the edge routes to it
    sso: bool = True  # the UI behind the client's identity provider when one is installed (false: opt out)

    # -- secrets, generated once and kept (changing ENCRYPTION_SALT_KEYS makes stored credentials unreadable) ----
    secret: generated_secret(hex_token, 48) = None  # Django SECRET_KEY (upstream: hex of 48 random bytes)
    encryption_salt_keys: generated_secret(urlsafe_token, 32) = None  # Fernet keys: comma list of [A-Za-z0-9_-]{32}
    internal_api_secret: generated_secret(hex_token, 32) = None  # web/worker <-> recording-api, cymbal
    internal_request_token: generated_secret(hex_token, 32) = None  # Django <-> feature-flags
    postgres_password: generated_secret(hex_token, 24) = None
    clickhouse_password: generated_secret(hex_token, 24) = None
    object_storage_password: generated_secret(hex_token, 24) = None
    session_recording_v2_metadata_switchover: generated_secret(rfc3339_now) = None  # set once, never moved
    # -- the operator's own keys for PostHog's AI features (upstream: blank unless set) -------------------------
    anthropic_api_key: SecretStr = SecretStr("")
    openai_api_key: SecretStr = SecretStr("")
    # -- the operator's PostHog personal API key (scope query:read), for the dashboard's usage figures (usage.py) --
    personal_api_key: SecretStr = SecretStr("")

    # -- upstream files (ClickHouse configs, idl, user scripts, init scripts, topics list) and GeoIP ----------
    upstream_ref: CommitId = UPSTREAM_REF  # a full commit id: git verifies the files against it
    upstream_dir: str = ""  # a local copy of those files (offline hosts); empty: fetch them at upstream_ref
    upstream_git: str = "https://github.com/PostHog/posthog.git"
    geoip_url: Annotated[str, EmptyMeans("no GeoIP")] = "https://mmdbcdn.posthog.net/"  # upstream's GeoLite2 City

    # -- images ---------------------------------------------------------------------------------------------------
    registry_mirror: str = ""  # prefix for every image, e.g. "mirror.example.com/"
    app_image: ImageRef = "posthog/posthog"
    app_tag: str = UPSTREAM_REF  # a release, a 40-char commit (images exist per commit) or latest
    node_image: ImageRef = "posthog/posthog-node"
    node_tag: str = ""  # empty: the newest Node image at or before upstream_ref (see node_image.py)
    rust_registry: str = "ghcr.io/posthog/posthog"  # capture, feature-flags, ... as <registry>/<name>:<tag>
    rust_tag: str = ""  # empty: per image, the newest sha-<commit> tag at or before upstream_ref (rust_images.py)
    postgres_image: ImageRef = "postgres:15.12-alpine"
    redis_image: ImageRef = "redis:7.2-alpine"
    valkey_image: ImageRef = "valkey/valkey:8.1-alpine"
    clickhouse_image: ImageRef = "clickhouse/clickhouse-server:26.6.2.158"
    zookeeper_image: ImageRef = "zookeeper:3.7.0"
    redpanda_image: ImageRef = "docker.redpanda.com/redpandadata/redpanda:v25.1.9"
    seaweedfs_image: ImageRef = "chrislusf/seaweedfs:4.29"
    temporal_image: ImageRef = "temporalio/auto-setup:1.26.2"
    temporal_admin_tools_image: ImageRef = "temporalio/admin-tools:1.26.2"
    temporal_ui_image: ImageRef = "temporalio/ui:2.47.2"
    elasticsearch_image: ImageRef = "elasticsearch:7.17.28"
    # livestream: upstream's hobby file names only the floating :master tag, and no per-commit tag convention for it
    # could be verified from upstream's files here (it is not in the Rust image workflow): pin a digest
    # (ghcr.io/posthog/posthog/livestream@sha256:...) of the ref's period when you can.
    livestream_image: ImageRef = "ghcr.io/posthog/posthog/livestream:master"
    browserless_image: ImageRef = "ghcr.io/browserless/chromium:v2.51.2"

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        return {"domain": f"posthog.{global_settings.domain}"}

    def image(self, field: str) -> str:
        """The image of setting ``<field>_image`` with the mirror in front."""
        return self.registry_mirror + getattr(self, f"{field}_image")

    @property
    def app(self) -> str:
        return f"{self.registry_mirror}{self.app_image}:{self.app_tag}"

    def product_version(self) -> str:
        """PostHog's version as this client pins it (upstream publishes no releases of the hobby stack): the
        upstream commit, short (12 digits), when the app image is the one built at it (the default); another app
        tag (a release, ``latest``) with the commit the stack's files come from."""
        short = self.upstream_ref[:12]
        if self.app_tag == self.upstream_ref:
            return short
        tag = self.app_tag[:12] if re.fullmatch(r"[0-9a-f]{40}", self.app_tag) else self.app_tag
        return f"{tag} (files at {short})"

