"""PostHog's hook implementations. Kept light: the settings model and the stack load only when a command needs them."""

from agencystack import Component, Resources, hookimpl

NAME = "posthog"


@hookimpl
def components():
    return [Component(
        name=NAME,
        description="PostHog product analytics (self-hosted)",
        settings="agencystack_posthog.settings:PostHogSettings",
        requires=("edge",),
        resources=Resources(min_memory_gb=4, min_cpus=2, recommended_memory_gb=16, recommended_cpus=4,
                            min_disk_gb=30),
    )]


def _inputs(context):
    """Upstream's files (per ref), this client's own files, the host's GeoIP share, the Node and Rust images, the
    limits."""
    from agencystack_posthog import node_image, rust_images
    from agencystack_posthog.geoip import share_dir
    from agencystack_posthog.stack import Inputs
    from agencystack_posthog.upstream import cache_dir

    from agencystack_posthog.limits import effective

    root, s = context.state_root, context.settings
    return Inputs(upstream=cache_dir(root, s.upstream_ref), scripts=context.dir.path / "files",
                  share=share_dir(root), node=node_image.image(s, root), rust=rust_images.images(s, root),
                  limits=effective(context))


@hookimpl
def stack(context):
    from agencystack_posthog.stack import build

    return build(context.settings, _inputs(context))


@hookimpl
def install(context):
    from agencystack import Outcome
    from agencystack_posthog import geoip, node_image, rust_images, upstream
    from agencystack_posthog.stack import write_files

    s, root = context.settings, context.state_root
    context.dir.ensure()
    upstream.materialize(s, root, context.progress)
    geoip.materialize(s, root, context.progress, warn=context.log.warning)
    node_image.resolve(s, root, context.engine, context.progress)  # before anything builds the stack: it names it
    rust_images.resolve(s, root, context.engine, context.progress)  # likewise
    write_files(_inputs(context).scripts)
    outcome = context.deploy()  # the core waits for the /_health probe (HEALTH_WAIT, stack.py)
    url = context.stack().probes[0].url
    site = url.removesuffix("/_health")
    context.record_fact("url", site)
    return Outcome(summary=f"{outcome.summary}; healthy at {site}", url=site, changes=outcome.changes,
                   details=outcome.details)


@hookimpl(wrapper=True)
def status(context):
    """The core's status (containers, and the /_health probe through the edge) with PostHog's URL."""
    from agencystack import State

    result = yield
    if result.state != State.ABSENT and context.stack().probes:
        result.url = context.stack().probes[0].url.removesuffix("/_health")
    return result


@hookimpl
def dashboard_entries(context):
    """PostHog's analytics overview on the agency dashboard: the ingestion host, a ready-to-paste ``posthog.init``
    snippet (the project API key is PostHog's, shown in its project settings: a placeholder here), the links, and
    -- with the operator's personal API key saved (``POSTHOG_PERSONAL_API_KEY``) -- the usage figures the dashboard's
    server asks PostHog's query API for (usage.py); without a key, how to add one."""
    from agencystack import DashboardEntry
    from agencystack_posthog import usage

    if context.component.name != NAME:
        return []
    base = (context.url or context.public_url(context.settings.domain)).rstrip("/")
    snippet = ("<script>\n"
               "  !function(t,e){/* PostHog's loader: copy it from Project settings > Web snippet */}(document,"
               "window.posthog||[]);\n"
               f"  posthog.init('<your project API key>', {{api_host: '{base}', person_profiles: 'identified_only'}})\n"
               "</script>")
    key = context.settings.personal_api_key.get_secret_value()
    figures = ("Usage figures (events and unique users, 24 h / 7 d) come from PostHog's query API with the saved "
               "personal API key, refreshed every few minutes." if key else usage.how_to_add(context.client))
    return [DashboardEntry(
        client=context.client, component=NAME, title="Product analytics", url=base + "/",
        description=(f"Ingestion host: {base} (events, replays and flags are accepted there without login). "
                     f"Paste the snippet with your project's API key (Project settings). {figures}"),
        code=snippet,
        links={"Project settings": f"{base}/project/settings", "Activity": f"{base}/activity/explore",
               "Docs: JS snippet": "https://posthog.com/docs/libraries/js"},
        usage=usage.spec(base, usage.internal_origin(context.manifest)) if key else None,
        secrets={usage.CREDENTIAL: key} if key else {},
        product_version=context.settings.product_version())]
