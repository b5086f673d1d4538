"""The edge: one Traefik per host in front of every client's routes (a core plugin, loaded with the core).

* ``edge`` is a per-host component (:attr:`agencystack.Component.per_host`): its state lives under the reserved
  client :data:`agencystack.names.HOST`, its project is ``host_edge`` (in a host namespace, a test's:
  ``host-<namespace>``, project ``host-<namespace>_edge``, network ``agencystack_edge-<namespace>``).
* Its ``modify_stack`` turns every stack's ``routes`` into Traefik labels (:mod:`agencystack.edge.routing`) and
  attaches the shared edge network to the routed services.
* Its install creates the shared network first (owned by the ``agencystack`` project, see
  :mod:`agencystack.edge.settings`), then deploys Traefik and waits for its health check.
* Its ``uninstall --purge`` removes that network too once Traefik is gone, when no other container is attached
  to it (a client's routed service still on it keeps it, and the outcome says which).

Core plugins take part in every targeted call, so each lifecycle hook here answers only for the edge itself. No
submodule may be named like a hook (importing ``agencystack.edge.stack`` would replace the ``stack`` hook on this
module): Traefik's stack lives in :mod:`agencystack.edge.traefik`.
"""

from __future__ import annotations

from agencystack.markers import hookimpl

NAME = "edge"


@hookimpl
def components():
    from agencystack.component import Component

    return [Component(name=NAME, per_host=True, settings="agencystack.edge.settings:EdgeSettings",
                      description="Traefik edge (one per host): HTTPS with ACME, routes every client's hosts")]


@hookimpl
def stack(context):
    if context.component.name != NAME:
        return None
    from agencystack.edge.traefik import build

    return build(context.settings, swarm=context.host.swarm)


@hookimpl
def modify_stack(context, stack):
    if not stack.routes:
        return
    from agencystack.edge.routing import Edge, attach

    settings = context.settings if context.component.name == NAME else host_settings(context.global_settings)
    attach(stack, client=context.client, component=context.component.name,
           edge=Edge(network=settings.network, http_port=settings.http_port, https_port=settings.https_port))


@hookimpl
def install(context):
    if context.component.name != NAME:
        return None
    context.check_owner()  # another state root's edge on this engine: refuse before touching the shared network
    ensure_network(context)
    from agencystack.errors import ComponentError

    try:
        outcome = context.deploy()
    except ComponentError as exc:
        raise ComponentError(name_health_settings(str(exc), context.settings)) from None
    outcome.details["network"] = context.settings.network
    return outcome


@hookimpl
def uninstall(context, purge):
    if context.component.name != NAME or not purge:
        return None
    outcome = context.plugins.default_uninstall(context, purge)
    network = context.settings.network
    attached = context.engine.network_attached(network)
    if attached:
        outcome.summary += (f"; network {network} kept: {len(attached)} container(s) still attached "
                            f"({', '.join(attached[:3])}{', ...' if len(attached) > 3 else ''})")
        outcome.details["network_kept"] = attached
        return outcome
    holder, plan = _network_holder(context, keep_ours=False)
    if plan.remove_networks:
        context.engine.apply(holder, plan, context.progress)
    outcome.details["network_removed"] = network
    return outcome


def _network_holder(context, *, keep_ours: bool):
    """The deployment that holds the shared edge networks (project ``agencystack``) with every other edge's network
    on this engine declared (other state roots', other host namespaces': never removed), ours only if
    ``keep_ours``; and its plan."""
    import dataclasses

    from agencystack.edge.settings import NETWORK_OWNER
    from agencystack.engine import Deployment
    from agencystack.stack import Network, Stack

    key = context.settings.network.removeprefix(f"{NETWORK_OWNER}_")  # the setting's pattern ensures the prefix
    ours = [Network(name=key)] if keep_ours else []
    holder = Deployment(project=NETWORK_OWNER, client=context.client, component=NAME,
                        stack=Stack(networks=ours), env={}, directory=context.dir.path,
                        version=context.component.version or "")
    plan = context.engine.plan(holder)
    others = [Network(name=name.removeprefix(f"{NETWORK_OWNER}_")) for name in plan.remove_networks
              if name != context.settings.network]
    if others:
        # the project holds the network of every edge on this engine: they stay declared, so changing ours never
        # removes theirs (it cut the host's real edge off its tenants)
        holder = dataclasses.replace(holder, stack=Stack(networks=[*ours, *others]))
        plan = context.engine.plan(holder)
    return holder, plan


def name_health_settings(message: str, settings) -> str:
    """Add to a failed health wait of Traefik the settings that fix it: its health check runs EDGE_BINARY inside
    EDGE_IMAGE, and an image whose binary lives elsewhere (or is not Traefik) never becomes healthy."""
    if not message.startswith("service traefik of ") or "health" not in message.partition("\n")[0]:
        return message
    first, newline, rest = message.partition("\n")
    hint = (f" (the health check runs '{settings.binary} healthcheck --ping' in {settings.image}: set EDGE_BINARY "
            "to the Traefik binary's path in that image, or EDGE_IMAGE to a Traefik image)")
    if first.endswith("; last log lines:"):
        return first.removesuffix("; last log lines:") + hint + "; last log lines:" + newline + rest
    return first + hint + newline + rest


def host_settings(global_settings):
    """The edge's settings as installed on this host (its .env, the environment, defaults)."""
    from agencystack import settings
    from agencystack.edge.settings import EdgeSettings

    client = global_settings.host_client  # "host", or "host-<namespace>" (AGENCYSTACK_HOST_NAMESPACE)
    return settings.load(EdgeSettings, global_settings, global_settings.state_root.component(client, NAME).env_file,
                         client=client).values


def ensure_network(context) -> None:
    """Create the shared edge network if missing: a deployment of its own that holds only this network."""
    holder, plan = _network_holder(context, keep_ours=True)
    if not plan.is_noop:
        context.engine.apply(holder, plan, context.progress)
