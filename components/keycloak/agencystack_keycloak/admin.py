"""Keycloak's admin REST API, used idempotently (httpx for HTTP, tenacity for waiting).

Reached one of two ways, both with the public URL's host as ``Host`` header (Keycloak's URLs and tokens are the
public ones either way, ``KC_HOSTNAME`` being a full URL):

* by default at Keycloak's container on the edge network (``direct``: ``via`` is its address there, port 8080,
  plain HTTP on a private network): the admin console, the admin REST API and the master realm are not routed on
  the public auth host, so the edge would answer them 404;
* with ``KEYCLOAK_ADMIN_PUBLIC=true``, through this host's edge (``via``: the edge's address; the TLS server name
  from the public URL), as users reach Keycloak: it works before DNS is set up and needs no published port.

Convergence rules (Keycloak 26): a realm or client that exists is updated, never recreated; a confidential
client's secret is read, never regenerated, except by :meth:`Admin.rotate_secret`. Realms this tool creates carry
the attribute ``agencystack.client``; an existing realm without it is someone else's: a conflict, not ours to change.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
from agencystack import ComponentError

OWNER_ATTRIBUTE = "agencystack.client"
DIRECT_PORT = 8080
TIMEOUT = 60  # creating the first realm takes Keycloak well over 10 s on a starved two-core host


class Unreachable(ComponentError):
    """Keycloak does not answer (not started, not ready, stopped): SSO stays pending."""


class Admin:
    def __init__(self, public_url: str, via: str | None, user: str, password: str, *, timeout: float = TIMEOUT,
                 direct: bool = False):
        parts = urlsplit(public_url)
        self.public_url = public_url.rstrip("/")
        self._via = via
        if direct:  # Keycloak's own HTTP port on the edge network (its container's address; None: not running)
            base, self._sni = f"http://{via}:{DIRECT_PORT}", {}
        else:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            base = f"{parts.scheme}://{via}:{port}"
            self._sni = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        # verify=False: the edge on this host is ours, and ACME may not have issued the certificate yet
        self._http = httpx.Client(base_url=base, headers={"Host": parts.netloc},
                                  verify=False, timeout=timeout, follow_redirects=False)
        self._user, self._password = user, password
        self._token: tuple[str, float] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        if not self._via:
            raise Unreachable(f"Keycloak at {self.public_url} does not run (no container on the edge network)")
        try:
            response = self._http.request(method, path, extensions=self._sni, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"Keycloak at {self.public_url} does not answer ({type(exc).__name__})") from None
        # the edge answers for a Keycloak it does not route yet (starting, or not yet seen by Traefik): its
        # HTTP->HTTPS redirect (the lowest router) or "404 page not found"; Keycloak's own API never redirects here
        if response.is_redirect or response.status_code in (502, 503, 504) or (
                response.status_code == 404 and "text/plain" in response.headers.get("content-type", "")):
            raise Unreachable(f"Keycloak at {self.public_url} is not ready (HTTP {response.status_code})")
        return response

    def token(self) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        response = self._send("POST", "/realms/master/protocol/openid-connect/token",
                              data={"grant_type": "password", "client_id": "admin-cli",
                                    "username": self._user, "password": self._password})
        if response.status_code in (400, 401):
            raise ComponentError(f"Keycloak at {self.public_url} refused the admin credentials "
                                 "(KEYCLOAK_ADMIN_USER / KEYCLOAK_ADMIN_PASSWORD)")
        _check(response, "admin token")
        body = response.json()
        self._token = (body["access_token"], time.monotonic() + max(5, body.get("expires_in", 60) - 10))
        return self._token[0]

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self._send(method, f"/admin/realms{path}", headers=headers, **kwargs)

    def wait_ready(self, timeout: float, progress=None) -> None:
        """Until an admin token is had (Keycloak up behind the edge), bounded by ``timeout`` seconds."""
        from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

        def report(state) -> None:
            if progress and state.attempt_number % 10 == 0:
                progress("keycloak", f"waiting for the admin API ({int(state.seconds_since_start)}s)")

        retry(retry=retry_if_exception_type(Unreachable), stop=stop_after_delay(timeout), wait=wait_fixed(2),
              reraise=True, before_sleep=report)(self.token)()

    # -- realm --------------------------------------------------------------------------------------------------
    def ensure_realm(self, realm: str, client: str) -> bool:
        """Create the client's realm once; True if created. A realm of that name not made for ``client``: error."""
        response = self.request("GET", f"/{realm}")
        if response.status_code == 200:
            owner = (response.json().get("attributes") or {}).get(OWNER_ATTRIBUTE)
            if owner != client:
                raise ComponentError(f"realm {realm!r} already exists in Keycloak and was not created for client "
                                     f"{client!r} (set KEYCLOAK_REALM to another name)")
            return False
        if response.status_code != 404:
            _check(response, f"realm {realm}")
        created = self.request("POST", "", json={"realm": realm, "enabled": True,
                                                 "attributes": {OWNER_ATTRIBUTE: client}})
        if created.status_code == 409:  # created meanwhile: check the owner
            return self.ensure_realm(realm, client)
        _check(created, f"creating realm {realm}")
        return True

    def ensure_realm_policy(self, realm: str, policy: dict) -> list[str]:
        """Converge the realm's session and brute-force fields to ``policy`` (a partial realm representation);
        returns the names of the fields changed (empty: nothing to do, nothing written)."""
        response = self.request("GET", f"/{realm}")
        _check(response, f"realm {realm}")
        current = response.json()
        changed = sorted(k for k, v in policy.items() if current.get(k) != v)
        if changed:
            _check(self.request("PUT", f"/{realm}", json={k: policy[k] for k in changed}),
                   f"updating realm {realm}")
        return changed

    # -- OIDC clients -------------------------------------------------------------------------------------------
    def find_client(self, realm: str, client_id: str) -> dict | None:
        response = self.request("GET", f"/{realm}/clients", params={"clientId": client_id})
        _check(response, f"client {client_id}")
        return next((c for c in response.json() if c.get("clientId") == client_id), None)

    def ensure_client(self, realm: str, client_id: str, redirect_uris: list[str], origins: list[str],
                      post_logout_uris: list[str] = ()) -> str:
        """Converge one confidential OIDC client (create once, then update); returns its id. Never touches the
        secret."""
        desired = {
            "clientId": client_id, "name": client_id, "enabled": True, "protocol": "openid-connect",
            "publicClient": False, "clientAuthenticatorType": "client-secret", "standardFlowEnabled": True,
            "directAccessGrantsEnabled": False, "implicitFlowEnabled": False, "serviceAccountsEnabled": False,
            "redirectUris": sorted(redirect_uris), "webOrigins": sorted(origins),
            "attributes": {"pkce.code.challenge.method": "S256",
                           # where an RP-initiated logout may send the browser back to ("##"-separated)
                           "post.logout.redirect.uris": "##".join(sorted(post_logout_uris))},
        }
        existing = self.find_client(realm, client_id)
        if existing is None:
            mapper = {"name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                      "config": {"included.client.audience": client_id, "id.token.claim": "true",
                                 "access.token.claim": "true"}}
            created = self.request("POST", f"/{realm}/clients", json={**desired, "protocolMappers": [mapper]})
            if created.status_code != 409:
                _check(created, f"creating client {client_id}")
            existing = self.find_client(realm, client_id)
            if existing is None:
                raise ComponentError(f"Keycloak accepted client {client_id!r} in realm {realm!r} but does not list it")
            return existing["id"]
        current = {k: existing.get(k) for k in desired if k != "attributes"}
        current["redirectUris"] = sorted(current.get("redirectUris") or [])
        current["webOrigins"] = sorted(current.get("webOrigins") or [])
        attributes = {**(existing.get("attributes") or {}), **desired["attributes"]}
        if current != {k: v for k, v in desired.items() if k != "attributes"} or attributes != existing.get("attributes"):
            updated = self.request("PUT", f"/{realm}/clients/{existing['id']}",
                                   json={**existing, **desired, "attributes": attributes})
            _check(updated, f"updating client {client_id}")
        return existing["id"]

    def client_secret(self, realm: str, uuid: str) -> str:
        response = self.request("GET", f"/{realm}/clients/{uuid}/client-secret")
        _check(response, "client secret")
        return response.json()["value"]

    def rotate_secret(self, realm: str, uuid: str) -> str:
        response = self.request("POST", f"/{realm}/clients/{uuid}/client-secret")
        _check(response, "rotating the client secret")
        return response.json()["value"]

    # -- users --------------------------------------------------------------------------------------------------
    def users(self, realm: str) -> list[dict]:
        response = self.request("GET", f"/{realm}/users", params={"max": 10000, "briefRepresentation": "true"})
        _check(response, "users")
        return response.json()

    def find_user(self, realm: str, username: str) -> dict | None:
        response = self.request("GET", f"/{realm}/users", params={"username": username, "exact": "true"})
        _check(response, f"user {username}")
        return next(iter(response.json()), None)

    def add_user(self, realm: str, email: str, password: str, *, temporary: bool) -> bool:
        """Create the user with a password (``temporary``: must be changed at first login); False if it exists."""
        response = self.request("POST", f"/{realm}/users", json={
            "username": email, "email": email, "enabled": True, "emailVerified": True,
            "credentials": [{"type": "password", "value": password, "temporary": temporary}]})
        if response.status_code == 409:
            return False
        _check(response, f"creating user {email}")
        return True

    def remove_user(self, realm: str, username: str) -> bool:
        user = self.find_user(realm, username)
        if user is None:
            return False
        _check(self.request("DELETE", f"/{realm}/users/{user['id']}"), f"removing user {username}")
        return True

    def logout_user(self, realm: str, username: str) -> bool:
        """End every session of the user (all devices, all clients of the realm); False if no such user."""
        user = self.find_user(realm, username)
        if user is None:
            return False
        _check(self.request("POST", f"/{realm}/users/{user['id']}/logout"), f"ending the sessions of {username}")
        return True

    def unlock_user(self, realm: str, username: str) -> bool:
        """Clear the user's failed-login record (a brute-force lockout ends now); False if no such user."""
        user = self.find_user(realm, username)
        if user is None:
            return False
        _check(self.request("DELETE", f"/{realm}/attack-detection/brute-force/users/{user['id']}"),
               f"unlocking {username}")
        return True


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        try:
            reason = response.json().get("errorMessage") or response.json().get("error") or ""
        except ValueError:
            reason = ""
        raise ComponentError(f"Keycloak: {what} failed: HTTP {response.status_code}" + (f" ({reason})" if reason
                                                                                       else ""))
