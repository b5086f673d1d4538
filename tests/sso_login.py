"""A browser-like login through the real edge, for the SSO engine tests: an HTTP client that keeps cookies the
way a browser does on ``*.localhost`` (Keycloak 26 sets its login cookies ``Secure; SameSite=None`` even over
plain HTTP, which browsers accept on localhost names and Python's http.cookiejar drops), follows redirects by hand
and fills Keycloak's forms as a new user does: login, then (one-time password) update-password, then (Keycloak
26's user profile wants a first and last name, which ``sso users add`` does not ask for) update-profile.

Every request goes to the edge on 127.0.0.1 with the Host header of the URL: no DNS for ``*.localhost`` needed.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import httpx

FORM = re.compile(r'<form[^>]*id="(kc-form-login|kc-passwd-update-form|kc-update-profile-form)"[^>]*action="([^"]+)"',
                  re.S)


class Browser:
    def __init__(self, edge_port: int):
        self.edge_port = edge_port
        self.jar: dict[str, dict[str, str]] = {}  # host -> cookie name -> value (paths ignored: one app per host)
        self.http = httpx.Client(timeout=60, follow_redirects=False)  # Keycloak on a loaded two-core host

    def close(self) -> None:
        self.http.close()

    def send(self, method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        parts = urlsplit(url)
        target = f"http://127.0.0.1:{self.edge_port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        cookies = "; ".join(f"{k}={v}" for k, v in self.jar.get(parts.hostname, {}).items())
        headers = {"Host": parts.netloc, **({"Cookie": cookies} if cookies else {})}
        self.http.cookies.clear()
        response = self.http.request(method, target, headers=headers, data=data)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            host_jar = self.jar.setdefault(parts.hostname, {})
            if "max-age=0" in header.lower() or "expires=thu, 01 jan 1970" in header.lower():
                host_jar.pop(name.strip(), None)
            else:
                host_jar[name.strip()] = value
        return response

    def get(self, url: str, *, limit: int = 10) -> tuple[str, httpx.Response]:
        """GET ``url`` following redirects (by hand, keeping cookies per host); returns the final URL and answer."""
        response = self.send("GET", url)
        while response.status_code in (301, 302, 303, 307) and limit:
            url = urljoin(url, response.headers["location"])
            response = self.send("GET", url)
            limit -= 1
        return url, response

    def login(self, app_url: str, username: str, password: str, new_password: str | None = None
              ) -> tuple[str, httpx.Response]:
        """Open ``app_url``, get sent to the realm's login form, submit it (and the update-password form a
        one-time password leads to, and the profile form of a user without a name); returns where the browser ends
        up and the answer there."""
        url, page = self.get(app_url)
        for _ in range(4):
            found = FORM.search(page.text) if page.status_code == 200 else None
            if found is None:
                return url, page
            action = html.unescape(found.group(2))
            if found.group(1) == "kc-form-login":
                fields = {"username": username, "password": password, "credentialId": ""}
            elif found.group(1) == "kc-passwd-update-form":
                fields = {"password-new": new_password or password, "password-confirm": new_password or password}
            else:
                fields = {"email": username, "firstName": "Test", "lastName": "User"}
            response = self.send("POST", urljoin(url, action), data=fields)
            if response.status_code in (301, 302, 303):
                url, page = self.get(urljoin(url, response.headers["location"]))
            else:
                url, page = url, response
        return url, page
