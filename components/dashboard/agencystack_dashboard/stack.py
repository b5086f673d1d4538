"""The dashboard's stack: one stdlib server in a plain Python image, its code and the client's published registry
document mounted read-only, routed through the edge (behind SSO when the client has an identity provider).

The web-facing container gets no Docker socket and no settings of any component: it reads the published document
(``<root>/dashboards/<client>/``, no secrets) and probes each component's routed service over the edge network.
The one secret-bearing mount is ``<root>/dashboards-private/<client>/`` (read-only, 0700, its user's): the secrets
the cards' usage requests send (e.g. PostHog's personal API key), which the core writes there and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

from agencystack import HealthCheck, Limits, Mount, Route, Service, Stack

SERVER = Path(__file__).resolve().parent / "web"
PORT = 8080


def container_user() -> str:
    """``uid:gid`` the server runs as: nobody (65534) when the host side runs as root (it gives the credentials
    directory to that user); otherwise the operator's own ids, the owner of the credentials it has to read."""
    import os

    return "65534:65534" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"


def build(context) -> Stack:
    s = context.settings
    published = context.state_root.dashboard_published(context.client)
    private = context.state_root.dashboard_credentials(context.client)
    command = ["python3", "-I", "/app/server.py", "--document", "/data/dashboard.json", "--listen", f"0.0.0.0:{PORT}",
               "--probe", "internal", "--interval", f"{s.probe_interval:g}", "--max-age", f"{s.max_age:g}",
               "--credentials", f"/private/{private.name}", "--usage-ttl", f"{s.usage_ttl:g}",
               "--self", context.component.name]  # its SSO state in the document: behind the gate or not
    health = ["CMD", "python3", "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/healthz', "
              "timeout=2)"]
    return Stack(
        services=[Service(name="web", image=s.image, command=command, user=container_user(), init=True,
                          stop_grace_period=2,
                          volumes=[Mount(source=str(SERVER), target="/app", read_only=True),
                                   Mount(source=str(published.parent), target="/data", read_only=True),
                                   Mount(source=str(private.parent), target="/private", read_only=True)],
                          healthcheck=HealthCheck(test=health, interval=1, timeout=3, retries=30),
                          limits=Limits(memory="128m", cpus=0.5, pids=64, min_memory="48m"))],
        routes=[Route(name="web", service="web", port=PORT, host=s.domain, sso=s.sso)],
    )
