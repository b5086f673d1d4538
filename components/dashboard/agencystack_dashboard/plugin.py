"""Hooks of the dashboard component (public API only)."""

from agencystack import Component, hookimpl

NAME = "dashboard"


@hookimpl
def components():
    return [Component(name=NAME, description="The agency dashboard: one page per client, every component live",
                      settings="agencystack_dashboard.settings:DashboardSettings", requires=("edge",))]


@hookimpl
def stack(context):
    if context.component.name != NAME:
        return None
    from agencystack_dashboard.stack import build

    return build(context)


@hookimpl
def install(context):
    """The default install, after making sure the published document's directory and the credentials directory
    exist (both are bind-mounted read-only). The credentials directory is 0700 and belongs to the container's user:
    the core writes the cards' secrets there (e.g. PostHog's personal API key), owned like the directory."""
    if context.component.name != NAME:
        return None
    import os

    from agencystack_dashboard.stack import container_user

    context.state_root.prepare_dashboard_published(context.client)
    private = context.state_root.prepare_dashboard_credentials(context.client).parent
    uid, gid = (int(n) for n in container_user().split(":"))
    if os.geteuid() == 0:
        os.chown(private, uid, gid)
    return context.deploy()


@hookimpl(wrapper=True)
def uninstall(context, purge):
    """The default uninstall; with ``--purge`` the credentials directory goes too (the secrets the core wrote there
    for this client's cards: nothing of them stays once the data is gone)."""
    outcome = yield
    if purge and context.component.name == NAME:
        import shutil

        shutil.rmtree(context.state_root.dashboard_credentials(context.client).parent, ignore_errors=True)
    return outcome


@hookimpl
def dashboard_entries(context):
    from agencystack import DashboardEntry

    return [DashboardEntry(client=context.client, component=NAME, title="This dashboard", url=context.url,
                           description="Every component of this client with its live health, version, single "
                                       "sign-on and last backup.",
                           links={"JSON": f"{context.url.rstrip('/')}/api/dashboard.json"} if context.url else {},
                           product_version=context.component.version or "")]  # its product: this distribution
