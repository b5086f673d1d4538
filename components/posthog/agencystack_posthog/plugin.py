"""PostHog's hook implementations. Kept light: the settings model and the stack load only when a command needs them."""

from agencystack import hookimpl
from agencystack.component import Component, Resources


@hookimpl
def components():
    return [Component(
        name="posthog",
        description="PostHog product analytics (self-hosted)",
        settings="agencystack_posthog.settings:PostHogSettings",
        resources=Resources(min_memory_gb=4, min_cpus=2, recommended_memory_gb=16, recommended_cpus=4,
                            min_disk_gb=30),
    )]


@hookimpl
def stack(context):
    from agencystack_posthog.stack import build

    return build(context.settings, context.client)
