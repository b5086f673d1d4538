"""Label keys and selectors: labels identify everything the engine driver owns.

Two families on every container, network and volume the driver creates:

- compose's own (``com.docker.compose.*``), so that an operator's ``docker compose -p <project> ps`` / ``logs`` /
  ``down`` recognise a deployment exactly as if compose had created it;
- ours (``io.agencystack.*``): who (client, component), that we manage it, and the config hash that decides a
  recreate.

Names follow compose's conventions too (see :func:`container_name`, :func:`network_name`, :func:`volume_name`).
This module has no dependencies (no docker SDK): the compose renderer uses it as well.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- compose's labels -------------------------------------------------------------------------------------------
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
CONTAINER_NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_VERSION = "com.docker.compose.version"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"
COMPOSE_NETWORK = "com.docker.compose.network"
COMPOSE_VOLUME = "com.docker.compose.volume"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"

#: the compose version whose conventions (names, labels) we follow; compose records its own version here
COMPOSE_COMPAT_VERSION = "2.40.3"

# -- ours -------------------------------------------------------------------------------------------------------
CLIENT = "io.agencystack.client"
COMPONENT = "io.agencystack.component"
MANAGED = "io.agencystack.managed"
CONFIG_HASH = "io.agencystack.config-hash"
VERSION = "io.agencystack.version"
JOB = "io.agencystack.job"  # "true" on one-shot services: exited 0 means completed, not stopped
HELPER = "io.agencystack.helper"  # short-lived helper containers (volume export/import): never a service
LIMITS = "io.agencystack.limits"  # the resource limits a container was created with (Limits.token)

COMPOSE_FILE = "compose.yaml"

#: our depends_on conditions in compose's words
CONDITIONS = {"started": "service_started", "healthy": "service_healthy",
              "completed": "service_completed_successfully"}


# -- names ------------------------------------------------------------------------------------------------------
def container_name(project: str, service: str) -> str:
    """compose's name for the (only) container of a service: ``<project>-<service>-1``."""
    return f"{project}-{service}-1"


def network_name(project: str, network: str, external: bool = False) -> str:
    """``<project>_<network>``; an external network is known by its own name."""
    return network if external else f"{project}_{network}"


def volume_name(project: str, volume: str, external: bool = False) -> str:
    """``<project>_<volume>``; an external volume is known by its own name."""
    return volume if external else f"{project}_{volume}"


# -- label sets -------------------------------------------------------------------------------------------------
def ours(client: str, component: str, version: str = "") -> dict[str, str]:
    """Our labels shared by everything a deployment creates."""
    return {CLIENT: client, COMPONENT: component, MANAGED: "true", VERSION: version}


def project_labels(project: str, working_dir: str) -> dict[str, str]:
    """compose's project-level labels (on containers)."""
    return {
        PROJECT: project,
        WORKING_DIR: working_dir,
        CONFIG_FILES: f"{working_dir.rstrip('/')}/{COMPOSE_FILE}",
        COMPOSE_VERSION: COMPOSE_COMPAT_VERSION,
    }


def service_labels(*, project: str, service: str, client: str, component: str, version: str, working_dir: str,
                   config_hash: str | None, job: bool = False, depends_on: Mapping[str, str] | None = None,
                   user_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every label of a service's container. ``config_hash`` None leaves the hash labels out (compose render)."""
    labels = dict(user_labels or {})
    labels.update(project_labels(project, working_dir))
    labels.update({SERVICE: service, CONTAINER_NUMBER: "1", ONEOFF: "False"})
    if depends_on:
        # compose's own form: "db:service_healthy:false,..." (service:condition:restart)
        labels[DEPENDS_ON] = ",".join(f"{dep}:{CONDITIONS[cond]}:false" for dep, cond in sorted(depends_on.items()))
    labels.update(ours(client, component, version))
    if job:
        labels[JOB] = "true"
    if config_hash is not None:
        labels[COMPOSE_CONFIG_HASH] = config_hash
        labels[CONFIG_HASH] = config_hash
    return labels


def network_labels(*, project: str, network: str, client: str, component: str, version: str) -> dict[str, str]:
    return {PROJECT: project, COMPOSE_NETWORK: network, COMPOSE_VERSION: COMPOSE_COMPAT_VERSION,
            **ours(client, component, version)}


def volume_labels(*, project: str, volume: str, client: str, component: str, version: str) -> dict[str, str]:
    return {PROJECT: project, COMPOSE_VOLUME: volume, COMPOSE_VERSION: COMPOSE_COMPAT_VERSION,
            **ours(client, component, version)}


# -- selectors (engine list filters) ----------------------------------------------------------------------------
def managed_filter(project: str | None = None) -> dict[str, list[str]]:
    """Everything we manage (optionally of one project): the status query."""
    selector = [f"{MANAGED}=true"]
    if project is not None:
        selector.append(f"{PROJECT}={project}")
    return {"label": selector}


def project_filter(project: str) -> dict[str, list[str]]:
    """Everything of a compose project, whoever created it (us, or an operator's ``docker compose up``)."""
    return {"label": [f"{PROJECT}={project}"]}
