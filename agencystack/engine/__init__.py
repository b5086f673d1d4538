"""The engine room: a small driver interface between the core and a container engine.

Nothing outside ``agencystack/engine/`` imports the docker SDK, and inside it only ``docker.py`` (the driver) holds
the SDK's client objects. The rooms:

- ``interface.py``: :class:`Deployment`, :class:`Plan`, :class:`Change` and the :class:`Driver` protocol;
- ``labels.py``: label keys, names and selectors (no dependencies: the compose renderer uses them too);
- ``compose.py``: a deployment rendered as ``compose.yaml`` for the operator;
- ``client.py``: the engine API handle, error translation, container exits, network removal;
- ``observe.py``: what the engine holds, from label-filtered list calls;
- ``diff.py``: desired against actual, per service (pure);
- ``converge.py``: making it so (gates, images, networks, volumes, create, start);
- ``readiness.py``: when a started service is up (healthy, completed, running), and why not;
- ``streams.py``: logs, exec and volume tar streams;
- ``docker.py``: :class:`~agencystack.engine.docker.DockerDriver`, which composes them;
- ``swarm_spec.py`` and ``swarm.py``: a stack as Swarm services, and :class:`~agencystack.engine.swarm.SwarmDriver`
  on a Swarm manager (it reaches a task's node through that node's own engine with the driver above).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agencystack.engine.interface import (
    AILING,
    Change,
    ChangeKind,
    Deployment,
    Driver,
    EngineInfo,
    Plan,
    Progress,
    no_progress,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["AILING", "Change", "ChangeKind", "Deployment", "Driver", "EngineInfo", "Plan", "Progress", "connect",
           "no_progress"]


def connect(address: str, *, tls_cert_path: Path | None = None, tls_verify: bool = True,
            tls_from_env: bool = True, swarm: bool = False) -> Driver:
    """The driver for ``address`` (a DOCKER_HOST value: ``unix://``, ``tcp://``, ``ssh://user@host``); imports the
    docker SDK only now. TLS from the files in ``tls_cert_path`` (ca.pem, cert.pem, key.pem), else, when
    ``tls_from_env``, from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH as the docker CLI reads them. ``swarm``: the
    address is a Swarm manager's (:class:`~agencystack.engine.swarm.SwarmDriver`)."""
    if swarm:
        from agencystack.engine.swarm import SwarmDriver as DockerDriver
    else:
        from agencystack.engine.docker import DockerDriver

    return DockerDriver(address, tls_cert_path=tls_cert_path, tls_verify=tls_verify, tls_from_env=tls_from_env)
