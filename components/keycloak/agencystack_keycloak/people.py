"""What ``agencystack sso`` drives: the realm's users and the OIDC clients' secrets (the ``sso_admin`` answer)."""

from __future__ import annotations

import secrets


class People:
    def __init__(self, context):
        from agencystack_keycloak.gate import Keycloak

        self.keycloak = Keycloak(context)
        #: seconds within which a removed or disabled user, or an ended session, loses every gated UI
        self.revalidate_seconds = self.keycloak.settings.sso_revalidate_seconds

    def list_users(self) -> list[dict]:
        with self.keycloak.admin() as admin:
            return [{"username": u.get("username"), "email": u.get("email"), "enabled": u.get("enabled", False)}
                    for u in admin.users(self.keycloak.realm)]

    def add_user(self, email: str, *, temporary: bool) -> str:
        from agencystack import UsageError

        password = secrets.token_urlsafe(15)
        with self.keycloak.admin() as admin:
            if not admin.add_user(self.keycloak.realm, email, password, temporary=temporary):
                raise UsageError(f"user {email!r} already exists in realm {self.keycloak.realm!r}")
        return password

    def remove_user(self, email: str) -> bool:
        with self.keycloak.admin() as admin:
            return admin.remove_user(self.keycloak.realm, email)

    def logout_user(self, email: str) -> bool:
        """End the user's sessions now (every device); each gate drops its cookie at its next re-check."""
        with self.keycloak.admin() as admin:
            return admin.logout_user(self.keycloak.realm, email)

    def unlock_user(self, email: str) -> bool:
        """Lift a brute-force lockout now."""
        with self.keycloak.admin() as admin:
            return admin.unlock_user(self.keycloak.realm, email)

    def rotate(self, component: str) -> None:
        self.keycloak.rotate(component)
