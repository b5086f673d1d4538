"""The edge's stack: Traefik with the docker provider, entrypoints web/websecure, the ACME resolver and ping.

On a Swarm host the same Traefik runs as a global service (a task on every manager, ports published on each node
in host mode, its ACME store each node's own) with the Swarm provider instead: it reads the services' labels from
the manager's API through the socket it mounts and routes to the tasks' addresses on the edge network (the
services are ``dnsrr``: no VIP). Managers only: a worker's engine cannot list the swarm's services.
"""

from __future__ import annotations

from agencystack.edge import routing
from agencystack.limits import Limits
from agencystack.stack import HealthCheck, Mount, Network, Port, Service, Stack, Volume

CONTAINER_HTTP, CONTAINER_HTTPS = 80, 443
#: the edge serves every tenant: bounded like them (EDGE_TRAEFIK_MEMORY, ..._CPUS, ..._PIDS override it)
LIMITS = Limits(memory="256m", memory_reservation="64m", cpus=1, pids=1024, min_memory="64m")


#: how often the Swarm provider polls the manager (Traefik's default is 15 s): a drained node's tasks leave the
#: routes within this
SWARM_REFRESH = 5


def command(settings, swarm: bool = False) -> list[str]:
    """Traefik's static configuration, as flags (no file to keep in sync)."""
    net = settings.network
    provider = "swarm" if swarm else "docker"
    # the redirect goes to the HTTPS port clients really reach (a published port other than 443 stays in the URL)
    to = routing.WEBSECURE if settings.https_port == CONTAINER_HTTPS else f":{settings.https_port}"
    acme = f"--certificatesresolvers.{routing.RESOLVER}.acme"
    flags = [
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
        f"--log.level={settings.log_level}",
        "--ping=true",
        f"--providers.{provider}=true",
        f"--providers.{provider}.endpoint=unix:///var/run/docker.sock",
        f"--providers.{provider}.exposedbydefault=false",
        f"--providers.{provider}.network={net}",
        # only containers meant for this edge's network: a second edge on the same engine sees none of ours
        f"--providers.{provider}.constraints=Label(`traefik.docker.network`,`{net}`)",
        *([f"--providers.swarm.refreshseconds={SWARM_REFRESH}"] if swarm else []),
        f"--entrypoints.{routing.WEB}.address=:{CONTAINER_HTTP}",
        f"--entrypoints.{routing.WEBSECURE}.address=:{CONTAINER_HTTPS}",
        # HTTP→HTTPS for every host, as the lowest-priority router: plain-HTTP routes (dev hosts) win over it
        f"--entrypoints.{routing.WEB}.http.redirections.entrypoint.to={to}",
        f"--entrypoints.{routing.WEB}.http.redirections.entrypoint.scheme=https",
        f"--entrypoints.{routing.WEB}.http.redirections.entrypoint.priority={routing.REDIRECT_PRIORITY}",
        f"{acme}.storage=/letsencrypt/acme.json",
        f"{acme}.httpchallenge.entrypoint={routing.WEB}",
    ]
    if settings.acme_email:
        flags.append(f"{acme}.email={settings.acme_email}")
    if settings.acme_ca_server:
        flags.append(f"{acme}.caserver={settings.acme_ca_server}")
    return flags


def build(settings, swarm: bool = False) -> Stack:
    """Traefik's stack; ``swarm``: for a Swarm host (see the module docstring)."""
    traefik = Service(
        name="traefik",
        image=settings.image,
        command=command(settings, swarm),
        swarm_global=True,
        swarm_placement=["node.role == manager"],
        networks={settings.network: []},
        ports=[Port(container=CONTAINER_HTTP, host=settings.http_port, host_ip=settings.bind_address),
               Port(container=CONTAINER_HTTPS, host=settings.https_port, host_ip=settings.bind_address)],
        volumes=[Mount(source=settings.docker_socket, target="/var/run/docker.sock", read_only=True),
                 Mount(source="acme", target="/letsencrypt")],
        healthcheck=HealthCheck(test=["CMD", settings.binary, "healthcheck", "--ping"], interval=2, timeout=5,
                                retries=30),
        start_timeout=60,
        limits=LIMITS,
    )
    return Stack(services=[traefik], volumes=[Volume(name="acme")],
                 networks=[Network(name=settings.network, external=True)])
