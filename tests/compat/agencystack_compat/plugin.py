# FROZEN COMPATIBILITY FIXTURE (plugin API 1.0.0, 2026-11-27): never edited to follow the code; only a major
# plugin API version may drop it, with an entry in CHANGELOG.md ("Plugin API").
"""Compat's hooks, as the 2026-11-27 contract had them: ``dashboard_entries`` is broadcast with the dashboard's
context of the client (``client``, and the global settings as ``base``): each plugin answers for its own
components installed for that client."""

from agencystack import Component, Resources, hookimpl

NAME = "compat"


@hookimpl
def components():
    return [Component(name=NAME, description="Compat (web service + PostgreSQL, Nov-27 API)",
                      settings="agencystack_compat.settings:CompatSettings", requires=("edge",),
                      resources=Resources(min_memory_gb=0.5, min_cpus=1))]


@hookimpl
def stack(context):
    if context.component.name != NAME:
        return None
    from agencystack_compat.stack import build

    return build(context.settings)


@hookimpl
def dashboard_entries(context):
    """Broadcast: a tile when compat is installed for the client (it checks that itself)."""
    from agencystack import ComponentDir, DashboardEntry

    if not ComponentDir(context.base.root, context.client, NAME).installed:
        return []
    domain = f"{NAME}.{context.base.client_domain(context.client)}"
    return [DashboardEntry(client=context.client, component=NAME, title="Compat", url=f"http://{domain}/",
                           description="A web service with its database", links={"home": f"http://{domain}/"})]
