"""The edge's settings (EDGE_*): one Traefik per host. Saved in the host's own state directory (see
:data:`agencystack.names.HOST`), read by every client's install to label its routes for this edge."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agencystack.settings import ComponentSettings, ImageRef, PortNumber

#: the network Traefik and every routed service share. It belongs to a project of its own, ``agencystack``, not
#: to the edge's: no component's uninstall removes it from under running clients. Neither name can clash with a
#: client's: client projects are ``<client>_<component>`` and their networks ``<client>_<component>_<network>``
#: (two underscores), while this name has exactly one.
NETWORK_OWNER = "agencystack"
NetworkName = Annotated[str, Field(pattern=rf"^{NETWORK_OWNER}_[a-z0-9][a-z0-9-]{{0,40}}$")]


class EdgeSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="EDGE_", extra="forbid")

    image: ImageRef = "traefik:v3.6"  # Docker Engine 29 needs Traefik >= 3.6.1
    binary: str = "traefik"  # the Traefik binary inside the image (its health check runs it)
    http_port: PortNumber = 80
    https_port: PortNumber = 443
    bind_address: str = "0.0.0.0"
    acme_email: Annotated[str, Field(pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] = ""
    acme_ca_server: str = ""  # empty: Let's Encrypt production; its staging URL for trials
    network: NetworkName = f"{NETWORK_OWNER}_edge"
    docker_socket: str = "/var/run/docker.sock"  # the engine's socket as the engine's host sees it
    log_level: str = "INFO"

    @classmethod
    def derived_defaults(cls, global_settings: Any) -> dict[str, Any]:
        host, derived = global_settings.docker_host, {}
        if host.startswith("unix://"):
            derived["docker_socket"] = host.removeprefix("unix://")
        namespace = getattr(global_settings, "host_namespace", "")
        if namespace:  # a test's edge: its own network, so the host's edge never routes it (and vice versa)
            derived["network"] = f"{NETWORK_OWNER}_edge-{namespace}"
        return derived
