"""Keycloak's hook implementations (the identity provider side of the SSO integration)."""

from agencystack import hookimpl
from agencystack.component import Component, Resources


@hookimpl
def components():
    return [Component(
        name="keycloak",
        description="Keycloak identity and single sign-on",
        settings="agencystack_keycloak.settings:KeycloakSettings",
        resources=Resources(min_memory_gb=2, min_cpus=1),
    )]


@hookimpl
def stack(context):
    from agencystack_keycloak.stack import build

    return build(context.settings, context.client)
