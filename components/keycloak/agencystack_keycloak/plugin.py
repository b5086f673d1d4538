"""Keycloak's hook implementations (the identity provider side of the SSO integration)."""

from agencystack import Component, Resources, hookimpl

NAME = "keycloak"
READY_TIMEOUT = 420


@hookimpl
def components():
    return [Component(
        name=NAME,
        description="Keycloak identity and single sign-on",
        settings="agencystack_keycloak.settings:KeycloakSettings",
        requires=("edge",),
        provides=("sso",),
        resources=Resources(min_memory_gb=2, min_cpus=1),
    )]


@hookimpl
def stack(context):
    from agencystack_keycloak.stack import build

    if context.component.name != NAME:
        return None
    return build(context.settings, context.client, context.public_url(context.settings.domain).rstrip("/"))


@hookimpl
def install(context):
    """Deploy, wait for the admin API, converge the client's realm (made once; its session and brute-force
    settings, KEYCLOAK_SESSION_* / KEYCLOAK_LOGIN_FAILURES / ..., updated when they differ)."""
    from agencystack import Outcome
    from agencystack_keycloak.gate import Keycloak

    if context.component.name != NAME:
        return None
    outcome = context.deploy()
    keycloak = Keycloak(context)
    with keycloak.admin() as admin:
        admin.wait_ready(max(READY_TIMEOUT, context.settings.start_timeout), context.progress)
        created, changed = keycloak.converge_realm(admin)
    context.record_fact("url", keycloak.public_url)
    context.record_fact("realm", keycloak.realm)
    state = "created" if created else (f"settings updated ({', '.join(changed)})" if changed else "ready")
    return Outcome(summary=f"{outcome.summary}; realm {keycloak.realm} {state} at {keycloak.issuer}",
                   url=console_url(context.settings, keycloak.public_url, keycloak.realm), changes=outcome.changes,
                   details={**outcome.details, "realm": keycloak.realm, "realm_changed": [] if created else changed})


def console_url(settings, base: str, realm: str) -> str:
    """Where an operator manages the realm: the admin console when it is routed (KEYCLOAK_ADMIN_PUBLIC), else the
    realm's account page (the console is not public)."""
    return f"{base}/admin/{realm}/console/" if settings.admin_public else f"{base}/realms/{realm}/account/"


@hookimpl(wrapper=True, specname="install")
def converge_dependents_after_install(context):
    """``install keycloak`` converges every component of the client that asks for SSO (order does not matter)."""
    outcome = yield
    if context.component.name == NAME:
        from agencystack_keycloak.dependents import converge

        converge(context, outcome)
    return outcome


@hookimpl(wrapper=True, specname="restore")
def converge_dependents_after_restore(context, archive):
    """A restored Keycloak (after a destroy, or on a new host) gives the client's components their gate back: once
    its admin API answers through the edge, each component that asks for SSO is converged (its OIDC client and
    secret come from the restored database; a cookie secret lost with the old state is made anew, which only
    ends sessions older than the restore)."""
    outcome = yield
    if context.component.name == NAME:
        from agencystack_keycloak.dependents import converge
        from agencystack_keycloak.gate import Keycloak

        with Keycloak(context).admin() as admin:
            admin.wait_ready(max(READY_TIMEOUT, context.settings.start_timeout), context.progress)
        converge(context, outcome)
    return outcome


@hookimpl(wrapper=True, specname="uninstall")
def converge_dependents_after_uninstall(context, purge):
    """After Keycloak is gone, components that asked for SSO are re-converged without the gate, and named."""
    outcome = yield
    if context.component.name == NAME:
        from agencystack_keycloak.dependents import converge

        converge(context, outcome, warn_unprotected=True)
    return outcome


@hookimpl(wrapper=True, specname="status")
def status_with_realm(context):
    """Keycloak's status adds its readiness as the admin API answers it through the edge."""
    from agencystack import ComponentStatus, ServiceStatus, State

    result = yield
    if context.component.name != NAME or result.state == State.ABSENT:
        return result
    from agencystack_keycloak.admin import Unreachable
    from agencystack_keycloak.gate import Keycloak

    keycloak = Keycloak(context)
    try:
        with keycloak.admin() as admin:
            admin.token()
        row = ServiceStatus("admin-api", State.RUNNING, f"ready; realm {keycloak.realm} at {keycloak.issuer}")
    except Unreachable as exc:
        row = ServiceStatus("admin-api", State.STARTING, str(exc))
    except Exception as exc:  # wrong credentials: one line
        row = ServiceStatus("admin-api", State.FAILED, str(exc))
    return ComponentStatus.from_services(result.client, result.component, [*result.services, row],
                                         message=result.message,
                                         url=console_url(context.settings, keycloak.public_url, keycloak.realm))


@hookimpl
def sso_protect(context, application, stack):
    from agencystack_keycloak.gate import protect

    return protect(context, application, stack)


@hookimpl
def sso_admin(context):
    from agencystack_keycloak.people import People

    return People(context)


@hookimpl
def dashboard_entries(context):
    """Keycloak on the agency dashboard: the client's realm and its admin console."""
    from agencystack import DashboardEntry

    if context.component.name != "keycloak":
        return []
    base = (context.url or context.public_url(context.settings.domain)).rstrip("/")
    realm = context.settings.realm_name(context.client)
    return [DashboardEntry(client=context.client, component="keycloak", title="Single sign-on",
                           url=f"{base}/realms/{realm}/account/",
                           description=f"Realm {realm}: the people who may sign in to this client's services "
                                       "('agencystack sso users add').",
                           links={**({"Admin console": f"{base}/admin/{realm}/console/"}
                                     if context.settings.admin_public else {}),
                                  "Account": f"{base}/realms/{realm}/account/"},
                           product_version=context.settings.product_version())]
