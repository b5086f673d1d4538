"""Single sign-on end to end on the real engine, through the real edge: a real Keycloak 26 (pre-built local image,
its own Postgres), a real oauth2-proxy, Traefik's forwardAuth, and PostHog's stack as the protected application
(every service but Postgres and the gate runs the echo backend: components/posthog/tests/helpers.EchoImages).

One Keycloak serves every test of this module (its start is the slow part on two cores): the module fixture installs
PostHog first (no identity provider: reported unprotected), then Keycloak, whose install converges PostHog (order
does not matter). Tests that stop things run last and restore what they stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

import pytest

from agencystack.context import LifecycleContext
from agencystack.lifecycle import run
from agencystack.testing import open_context
from agencystack.testing import run_cli as cli
from components.posthog.tests.helpers import ROUTED, Host, domain, posthog_host
from tests.engine.helpers import wait_until
from tests.helpers import request, served_by
from tests.sso_login import Browser

pytestmark = [
    pytest.mark.engine,
    # Opt-in until this module has passed end to end: written in the session that built it (2026-11-27), its module
    # fixture never got past Keycloak's first start on a machine shared by six builds (load 150-500 on 2 cores: a
    # 20-minute set-up timeout). Issue 12 stays open on it; run it with AGENCYSTACK_SSO_ENGINE_TESTS=1.
    pytest.mark.skipif(os.environ.get("AGENCYSTACK_SSO_ENGINE_TESTS") != "1",
                       reason="SSO engine tests are opt-in until proven (AGENCYSTACK_SSO_ENGINE_TESTS=1; issue 12)"),
]

LOOKALIKES = ["/", "/engage", "/e.php", "/flagsx", "/batch/../admin", "/sx", "/e2", "/settings", "/%65ngage",
              "/_healthx", "/oauth2x", "/i/v0x"]


class SsoHost(Host):
    def keycloak(self, client: str, action: str) -> LifecycleContext:
        flags = {"KEYCLOAK_IMAGE": self.images["keycloak"], "KEYCLOAK_OPTIMIZED": "true",
                 "KEYCLOAK_POSTGRES_IMAGE": self.images["postgres"],
                 "KEYCLOAK_OAUTH2_PROXY_IMAGE": self.images["oauth2-proxy"],
                 "KEYCLOAK_START_TIMEOUT": "1500"} if action == "install" else {}
        return open_context(self.plugins(), "keycloak", action, client=client, flags=flags,
                            domain=f"auth.{client}.localhost" if action == "install" else None)

    def app_url(self, client: str, path: str = "/") -> str:
        return f"http://{domain(client)}:{self.edge.http_port}{path}"

    def secrets(self, client: str) -> dict[str, str]:
        from agencystack_keycloak.gate import Keycloak

        return Keycloak(self.keycloak(client, "status")).read_secrets("posthog")


@pytest.fixture(scope="module")
def host(images, engine_run_id, tmp_path_factory):
    with posthog_host(tmp_path_factory.mktemp("sso"), images, engine_run_id, SsoHost) as host:
        yield host


@pytest.fixture(scope="module")
def sso(host, engine_run_id):
    """PostHog installed first (no identity provider), then Keycloak, which converges PostHog behind the gate."""
    client = f"sso-{engine_run_id}"
    first = host.install(client)
    started = time.monotonic()
    try:
        keycloak = run(host.keycloak(client, "install"), "install")
        yield {"client": client, "first": first, "keycloak": keycloak, "seconds": time.monotonic() - started}
    finally:
        for component in ("posthog", "keycloak"):
            with contextlib.suppress(Exception):
                ctx = host.context(client, "uninstall") if component == "posthog" else host.keycloak(client,
                                                                                                    "uninstall")
                run(ctx, "uninstall", purge=True)


def test_posthog_without_an_identity_provider_is_reported_unprotected(sso):
    sso_state = sso["first"].details["sso"]
    assert sso_state["state"] == "unprotected" and sso_state["routes"] == ["web"]
    assert "SSO unprotected" in sso["first"].summary


def test_installing_keycloak_after_posthog_protects_it(host, sso):
    client = sso["client"]
    assert sso["keycloak"].details["sso_converged"] == ["posthog"], sso["keycloak"].summary
    status = run(host.context(client, "status"), "status")
    row = next(s for s in status.services if s.name == "sso")
    assert row.state.value == "running" and row.detail.startswith("protected: login via "
                                                                  f"http://auth.{client}.localhost:")
    kc = run(host.keycloak(client, "status"), "status")
    assert kc.state.value == "running", kc
    assert next(s for s in kc.services if s.name == "admin-api").detail.startswith(f"ready; realm {client}")


def test_unauthenticated_ui_request_is_sent_to_the_realm_login(host, sso):
    client = sso["client"]
    status, headers, _ = request(host.edge.http_port, domain(client), "/insights")
    assert status == 302, (status, headers)
    browser = Browser(host.edge.http_port)
    try:
        url, page = browser.get(host.app_url(client, "/insights"))
    finally:
        browser.close()
    assert url.startswith(f"http://auth.{client}.localhost:{host.edge.http_port}/realms/{client}/protocol/"
                          "openid-connect/auth?"), url
    assert page.status_code == 200 and 'id="kc-form-login"' in page.text


@pytest.mark.parametrize("path", sorted(ROUTED))
def test_public_ingestion_paths_answer_without_login(host, sso, path):
    client = sso["client"]
    assert served_by(host.edge.http_port, domain(client), path) == f"{client}-{ROUTED[path][0]}"


def test_health_probe_stays_public(host, sso):
    client = sso["client"]
    assert served_by(host.edge.http_port, domain(client), "/_health") == f"{client}-web"


@pytest.mark.parametrize("path", LOOKALIKES)
def test_ui_paths_and_lookalikes_need_login(host, sso, path):
    status, headers, body = request(host.edge.http_port, domain(sso["client"]), path)
    assert status != 200 and "X-Echo-Service" not in headers, (status, body[:200])


def test_login_with_a_user_from_sso_users_add_reaches_the_ui(host, sso):
    client = sso["client"]
    code, out = cli("sso", "users", "add", "-c", client, "ada@example.com", "--json")
    assert code == 0, out
    password = json.loads(out)["password"]
    code, listed = cli("sso", "users", "list", "-c", client)
    assert code == 0 and "ada@example.com" in listed
    browser = Browser(host.edge.http_port)
    try:
        url, page = browser.login(host.app_url(client, "/insights"), "ada@example.com", password,
                                  new_password=password + "-2")
        assert page.status_code == 200 and page.headers.get("X-Echo-Service") == f"{client}-web", (url, page.text[:300])
        assert " path=/insights " in page.text
        # the session cookie carries on: another UI path, no login page
        assert browser.get(host.app_url(client, "/settings"))[1].headers.get("X-Echo-Service") == f"{client}-web"
    finally:
        browser.close()
    # secrets never in the outputs of the commands, the logs, the rendered files or command lines
    secrets = host.secrets(client)
    logs = "".join(p.read_text() for p in (host.root.parent / "log").rglob("*.log"))
    compose = (host.root / "clients" / client / "posthog" / "compose.yaml").read_text()
    for value in (*secrets.values(), password):
        assert value not in listed and value not in logs and value not in compose
    assert secrets["SSO_CLIENT_SECRET"] not in out


def test_login_in_headless_chromium_leaves_a_screenshot(host, sso):
    """The same login in a real browser (Debian's chromium + chromium-driver, selenium): *.localhost resolves to
    loopback in Chromium itself, Keycloak's Secure cookies are accepted there. The screenshot of the protected page
    is left in $AGENCYSTACK_TEST_ARTIFACTS (default /tmp/agencystack-test-artifacts)."""
    import os
    import shutil
    from pathlib import Path

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        message = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    client = sso["client"]
    admin = run(host.keycloak(client, "sso"), "sso_admin")
    password = admin.add_user("chromium@example.com", temporary=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        driver.set_page_load_timeout(60)
        driver.get(host.app_url(client, "/insights"))
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "kc-login")))
        assert driver.current_url.startswith(f"http://auth.{client}.localhost:{host.edge.http_port}/realms/{client}/")
        driver.find_element(By.ID, "username").send_keys("chromium@example.com")
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "kc-login").click()
        WebDriverWait(driver, 60).until(lambda d: f"service={client}-web " in d.page_source)
        assert driver.current_url == host.app_url(client, "/insights")
        folder = Path(os.environ.get("AGENCYSTACK_TEST_ARTIFACTS") or "/tmp/agencystack-test-artifacts")
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / "sso-chromium-login.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    finally:
        driver.quit()


def test_wrong_admin_credentials_and_a_foreign_realm_are_one_clear_error_each(host, sso):
    from agencystack import ComponentError
    from agencystack_keycloak.admin import Admin
    from agencystack_keycloak.gate import Keycloak

    keycloak = Keycloak(host.keycloak(sso["client"], "status"))
    with Admin(keycloak.public_url, keycloak.via, "admin", "not-the-password") as wrong:
        with pytest.raises(ComponentError, match="refused the admin credentials"):
            wrong.token()
    with keycloak.admin() as admin:
        foreign = f"foreign-{sso['client']}"
        assert admin.request("POST", "", json={"realm": foreign, "enabled": True}).status_code == 201
        try:
            with pytest.raises(ComponentError, match=f"realm '{foreign}' already exists .* not created for client"):
                admin.ensure_realm(foreign, sso["client"])
        finally:
            admin.request("DELETE", f"/{foreign}")


def test_user_removed_cannot_log_in(host, sso):
    client = sso["client"]
    code, out = cli("sso", "users", "add", "-c", client, "bob@example.com", "--json", "--permanent")
    assert code == 0, out
    code, out = cli("sso", "users", "remove", "-c", client, "bob@example.com")
    assert code == 0, out
    code, out = cli("sso", "users", "remove", "-c", client, "bob@example.com")
    assert code == 2 and "no user" in out


def test_second_install_keeps_the_oidc_client_and_its_secret(host, sso, docker_client):
    client = sso["client"]
    before = host.secrets(client)
    outcome = host.install(client)
    assert outcome.details["sso"]["state"] == "protected"
    assert host.secrets(client) == before
    from agencystack_keycloak.gate import Keycloak

    with Keycloak(host.keycloak(client, "status")).admin() as admin:
        response = admin.request("GET", f"/{client}/clients", params={"clientId": "posthog"})
        assert len(response.json()) == 1
    proxy = docker_client.containers.get(f"{client}_posthog-sso-proxy-1")
    args = " ".join(proxy.attrs["Args"] or []) + " ".join(proxy.attrs["Config"]["Cmd"] or [])
    assert all(v not in args for v in before.values())


def test_rotation_changes_the_secret_and_login_still_works(host, sso):
    client = sso["client"]
    before = host.secrets(client)
    admin = run(host.keycloak(client, "sso"), "sso_admin")
    admin.rotate("posthog")
    host.install(client)  # what 'agencystack sso rotate' runs next (the CLI's plugins lack the echo test plugin)
    after = host.secrets(client)
    assert after["SSO_CLIENT_SECRET"] != before["SSO_CLIENT_SECRET"]
    assert after["SSO_COOKIE_SECRET"] == before["SSO_COOKIE_SECRET"]
    password = admin.add_user("carol@example.com", temporary=False)
    browser = Browser(host.edge.http_port)
    try:
        _, page = browser.login(host.app_url(client, "/"), "carol@example.com", password)
        assert page.headers.get("X-Echo-Service") == f"{client}-web", page.text[:300]
    finally:
        browser.close()


def test_keycloak_stopped_protected_paths_fail_closed_and_ingestion_stays_up(host, sso, docker_client):
    client = sso["client"]
    keycloak = docker_client.containers.get(f"{client}_keycloak-keycloak-1")
    proxy = docker_client.containers.get(f"{client}_posthog-sso-proxy-1")
    keycloak.stop(timeout=20)
    try:
        browser = Browser(host.edge.http_port)
        try:
            _, page = browser.get(host.app_url(client, "/insights"))
            assert page.headers.get("X-Echo-Service") is None and page.status_code != 200
        finally:
            browser.close()
        assert served_by(host.edge.http_port, domain(client), "/e") == f"{client}-capture"
        proxy.stop(timeout=5)
        status, headers, _ = request(host.edge.http_port, domain(client), "/insights")
        assert status != 200 and "X-Echo-Service" not in headers
        assert served_by(host.edge.http_port, domain(client), "/batch") == f"{client}-capture"
        assert run(host.keycloak(client, "status"), "status").state.value != "running"
    finally:
        proxy.start()
        keycloak.start()
        wait_until(lambda: docker_client.containers.get(keycloak.id).attrs["State"].get("Health", {})
                   .get("Status") == "healthy", timeout=1500, interval=2)


def test_uninstalling_keycloak_leaves_posthog_reachable_with_a_warning(host, sso):
    client = sso["client"]
    outcome = run(host.keycloak(client, "uninstall"), "uninstall", purge=False)
    assert outcome.details["unprotected"] == ["posthog"] and "posthog" in outcome.summary
    assert served_by(host.edge.http_port, domain(client), "/insights") == f"{client}-web"
    status = run(host.context(client, "status"), "status")
    assert next(s for s in status.services if s.name == "sso").detail.startswith("unprotected")
