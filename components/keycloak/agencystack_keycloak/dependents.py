"""Order does not matter: installing or uninstalling Keycloak re-converges the client's components that ask for
SSO, so that they get (or lose) the gate without the operator re-running each install."""

from __future__ import annotations

NAME = "keycloak"


def asking(context) -> list[str]:
    """Installed components of the client whose stack has a route asking for SSO."""
    found = []
    for component in context.installed_components():
        if component == NAME or component not in context.components:
            continue
        if context.components[component].per_host:
            continue
        probe = context.sibling(component, "plan")
        try:
            if any(r.sso and not r.public for r in probe.stack().routes):
                found.append(component)
        except Exception as exc:  # a broken component must not block Keycloak's own outcome
            context.log.warning(f"SSO: cannot read {component}'s stack: {exc}")
    return found


def converge(context, outcome, *, warn_unprotected: bool = False) -> None:
    from agencystack import lifecycle

    names = asking(context)
    if not names:
        return
    done, failed = [], []
    for component in names:
        context.progress(component, "converging SSO")
        try:
            lifecycle.install(context.sibling(component, "install"))
            done.append(component)
        except Exception as exc:
            failed.append(f"{component} ({exc})")
    outcome.details["sso_converged"] = done
    if failed:
        outcome.details["sso_failed"] = failed
        outcome.summary += f"; SSO not converged for: {', '.join(failed)}"
    if warn_unprotected and names:
        message = (f"warning: {', '.join(names)} for {context.client} no longer have single sign-on and are "
                   "reachable without login")
        context.log.warning(message)
        outcome.summary += f"; {message}"
        outcome.details["unprotected"] = names
    elif done:
        outcome.summary += f"; SSO converged for {', '.join(done)}"
