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
- ``docker.py``: :class:`~agencystack.engine.docker.DockerDriver`, which composes them.
"""

from __future__ import annotations

from agencystack.engine.interface import (
    AILING,
    Change,
    ChangeKind,
    Deployment,
    Driver,
    Plan,
    Progress,
    no_progress,
)

__all__ = ["AILING", "Change", "ChangeKind", "Deployment", "Driver", "Plan", "Progress", "connect", "no_progress"]


def connect(address: str) -> Driver:
    """The driver for ``address`` (a DOCKER_HOST value); imports the docker SDK only now."""
    from agencystack.engine.docker import DockerDriver

    return DockerDriver(address)
