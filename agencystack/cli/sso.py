"""``agencystack sso``: the people of a client's identity provider, and client-secret rotation.

The CLI is the core's; what it drives is the identity provider's (the component whose ``provides`` has ``"sso"``,
Keycloak) through the targeted hook ``sso_admin``. So the command set is the same whatever provider a host runs,
and a plugin adds no commands of its own (Typer's app is assembled before any plugin loads: ``--help`` stays fast).
"""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply

sso_app = typer.Typer(help="Single sign-on: the client's users and OIDC client secrets.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the client's realm.", no_args_is_help=True)
sso_app.add_typer(users_app, name="users")


def register(app: typer.Typer) -> None:
    app.add_typer(sso_app, name="sso")


def _admin(ctx: typer.Context, client_id, action: str, json_output: bool = False):
    from agencystack import lifecycle
    from agencystack.cli.session import Session

    session = Session.of(ctx, json_output)  # --json: the console log is quiet (warnings and errors only)
    context, admin = lifecycle.sso_admin(session, client_id, action)
    return session, context, admin


@users_app.command("list")
def users_list(ctx: typer.Context, client_id: options.ClientId = None, json_output: options.Json = False) -> Reply:
    """List the realm's users."""
    from agencystack.cli.output import say

    _, _, admin = _admin(ctx, client_id, "sso", json_output)
    users = admin.list_users()

    def text() -> None:
        for user in users:
            say(f"{user['username']}  {'enabled' if user.get('enabled') else 'disabled'}")

    return Reply(users, text)


@users_app.command("add")
def users_add(ctx: typer.Context, email: str = typer.Argument(..., help="The user's e-mail (also the username)."),
              client_id: options.ClientId = None,
              permanent: bool = typer.Option(False, "--permanent", help="The password need not be changed at "
                                             "first login (default: one-time password)."),
              json_output: options.Json = False) -> Reply:
    """Add a user with a generated password, shown once (never logged)."""
    import re

    from agencystack.cli.output import say
    from agencystack.errors import UsageError

    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise UsageError(f"not an e-mail address: {email!r}")
    session, context, admin = _admin(ctx, client_id, "sso", json_output)
    password = admin.add_user(email.lower(), temporary=not permanent)
    context.log.info(f"sso user {email.lower()} added")

    def text() -> None:
        say(f"added {email.lower()}; password (shown once"
            f"{', must be changed at first login' if not permanent else ''}):")
        say(password)

    # shown once, on stdout only: deliberately not through the redactor or the log
    return Reply({"username": email.lower(), "password": password, "temporary": not permanent}, text, redact=False)


@users_app.command("remove")
def users_remove(ctx: typer.Context, email: str = typer.Argument(..., help="The user's e-mail."),
                 client_id: options.ClientId = None, json_output: options.Json = False) -> Reply:
    """Remove a user."""
    from agencystack.cli.output import say
    from agencystack.errors import UsageError

    _, context, admin = _admin(ctx, client_id, "sso", json_output)
    if not admin.remove_user(email.lower()):
        raise UsageError(f"no user {email.lower()!r} in the realm of {context.client}")
    context.log.info(f"sso user {email.lower()} removed")
    return Reply({"username": email.lower(), "removed": True},
                 lambda: say(f"removed {email.lower()}{_window(admin)}"))


def _window(admin) -> str:
    seconds = getattr(admin, "revalidate_seconds", None)
    return f"; signed out of every protected UI within {seconds} s" if seconds else ""


def _user_action(ctx: typer.Context, client_id, email: str, member: str, done: str, window: bool = False,
                 json_output: bool = False) -> Reply:
    from agencystack.cli.output import say
    from agencystack.errors import UsageError

    _, context, admin = _admin(ctx, client_id, "sso", json_output)
    action = getattr(admin, member, None)
    if action is None:
        raise UsageError(f"the identity provider of {context.client} cannot {member.removesuffix('_user')} users")
    if not action(email.lower()):
        raise UsageError(f"no user {email.lower()!r} in the realm of {context.client}")
    context.log.info(f"sso user {email.lower()}: {done}")
    return Reply({"username": email.lower(), "done": done},
                 lambda: say(f"{email.lower()}: {done}{_window(admin) if window else ''}"))


@users_app.command("logout")
def users_logout(ctx: typer.Context, email: str = typer.Argument(..., help="The user's e-mail."),
                 client_id: options.ClientId = None, json_output: options.Json = False) -> Reply:
    """End the user's sessions now, on every device."""
    return _user_action(ctx, client_id, email, "logout_user", "sessions ended", window=True,
                        json_output=json_output)


@users_app.command("unlock")
def users_unlock(ctx: typer.Context, email: str = typer.Argument(..., help="The user's e-mail."),
                 client_id: options.ClientId = None, json_output: options.Json = False) -> Reply:
    """Lift the user's lockout after too many failed logins."""
    return _user_action(ctx, client_id, email, "unlock_user", "unlocked (failed logins forgotten)",
                        json_output=json_output)


@sso_app.command("rotate")
def rotate(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
           json_output: options.Json = False) -> Reply:
    """Give COMPONENT's OIDC client a new secret, then converge COMPONENT so its gate uses it."""
    from agencystack import lifecycle
    from agencystack.cli.output import say

    session, context, admin = _admin(ctx, client_id, "sso", json_output)
    target = session.context(component, "install", client=context.client)
    admin.rotate(target.component.name)
    context.log.info(f"sso client secret of {target.component.name} rotated")
    outcome = lifecycle.install(target)
    return Reply({"component": target.component.name, "client": context.client, "rotated": True,
                  "outcome": outcome},
                 lambda: say(f"rotated the client secret of {target.component.name} for {context.client}; "
                             f"{outcome.summary}"))
