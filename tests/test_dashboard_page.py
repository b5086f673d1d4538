"""The dashboard's page as a person reads it: the product's version on each card, times relative ("2 min ago") with
the exact time on hover and never split mid-date, a component whose install failed shown failed with its error, a
"Sign out" link only behind the client's SSO gate, and cards side by side across the width. Rendered from a
document here; in headless Chromium through ``agencystack dashboard serve`` (no engine: the fixture components
``site`` and ``shop`` run no containers; site's health is a real HTTP server on loopback), with a screenshot left in
$AGENCYSTACK_TEST_ARTIFACTS (default /tmp/agencystack-test-artifacts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agencystack.testing import free_port

NOW = datetime(2026, 12, 7, 7, 57, 40, tzinfo=UTC)


def _server():
    from agencystack_dashboard.web import server

    return server


def _component(name: str, **overrides) -> dict:
    return {"name": name, "version": "1.2.3", "product_version": "", "url": None, "health": None, "sso": None,
            "last_action": {"action": "install", "outcome": "ok", "at": "2026-12-07T07:55:35+00:00", "error": None},
            "last_backup": None, "entries": [], "entries_error": None,
            "live": {"state": "running", "detail": "HTTP 200", "checked_at": 0, "age": 1.0}, **overrides}


def test_times_are_relative_with_the_exact_time_on_hover():
    server = _server()
    assert [server.relative(s) for s in (3, 42, 125, 7200, 86400, 3 * 86400, -130)] == [
        "just now", "42 s ago", "2 min ago", "2 h ago", "1 day ago", "3 days ago", "in 2 min"]
    page = server.page({"client": "acme", "components": [_component("site")]}, 15, now=NOW)
    assert ('<time datetime="2026-12-07T07:55:35+00:00" title="2026-12-07T07:55:35+00:00">2 min ago</time>'
            in page)
    assert "2026-12-07T07:55:35+00:00</" not in page  # the exact time only on hover, not as the text
    old = server.page({"client": "acme", "components": [_component("site", last_action={
        "action": "install", "outcome": "ok", "at": "2026-10-01T00:00:00Z", "error": None})]}, 15, now=NOW)
    assert 'title="2026-10-01T00:00:00Z">on 2026-10-01</time>' in old  # a month on: the date
    css = (server.HERE / "style.css").read_text()
    assert re.search(r"(^|\n)time \{ white-space: nowrap; \}", css)  # never split mid-date


def test_the_card_shows_the_products_version_beside_the_plugins():
    server = _server()
    page = server.page({"client": "acme", "components": [_component("keycloak", product_version="26.7.3",
                                                                    version="0.1.0")]}, 15, now=NOW)
    assert "<dt>Version</dt><dd>26.7.3 <span class=\"muted\">plugin 0.1.0</span></dd>" in page
    same = server.page({"client": "acme", "components": [_component("dashboard", product_version="0.1.0",
                                                                   version="0.1.0")]}, 15, now=NOW)
    assert "<dt>Version</dt><dd>0.1.0</dd>" in same  # its product is the plugin's distribution: said once
    plain = server.page({"client": "acme", "components": [_component("hello")]}, 15, now=NOW)
    assert "<dt>Version</dt><dd>1.2.3</dd>" in plain  # no product version stated: the plugin's


def test_a_failed_install_is_a_failed_card_with_its_error_whatever_its_probe():
    server = _server()
    failed = _component("shop", live={"state": "unknown", "detail": "no HTTP route to probe"}, last_action={
        "action": "install", "outcome": "failed", "at": "2026-12-07T07:55:35+00:00", "error": "shop: <no> files"})
    page = server.page({"client": "acme", "components": [failed]}, 15, now=NOW)
    assert 'data-component="shop" data-state="failed"' in page and '<span class="badge">failed</span>' in page
    assert ('<p class="failure" data-error="last-install"><strong>install failed</strong> <time datetime='
            '"2026-12-07T07:55:35+00:00" title="2026-12-07T07:55:35+00:00">2 min ago</time>: shop: &lt;no&gt; files'
            in page)
    restart = _component("shop", last_action={"action": "restart", "outcome": "failed", "at": NOW.isoformat(),
                                              "error": "no such service"})
    page = server.page({"client": "acme", "components": [restart]}, 15, now=NOW)
    assert 'data-state="running"' in page and "<dt>Error</dt><dd>no such service</dd>" in page  # its probe decides


@pytest.mark.parametrize(("sso", "self_name", "shown"), [
    ({"state": "protected", "detail": ""}, "dashboard", True),
    ({"state": "pending", "detail": "not converged"}, "dashboard", False),
    ({"state": "unprotected", "detail": "no identity provider"}, "dashboard", False),
    (None, "dashboard", False),
    ({"state": "protected", "detail": ""}, None, False),  # agencystack dashboard serve: no gate in front of it
])
def test_sign_out_is_linked_only_behind_the_gate(sso, self_name, shown):
    data = {"client": "acme", "components": [_component("dashboard", sso=sso), _component("site")]}
    page = _server().page(data, 15, self_name, now=NOW)
    assert ('<a class="signout" href="/oauth2/sign_out">Sign out</a>' in page) is shown


def test_the_installed_dashboard_tells_its_server_who_it_is(agencystack_context):
    command = agencystack_context("dashboard", client="acme").stack().services[0].command
    assert command[command.index("--self") + 1] == "dashboard"


# -- in a real browser -----------------------------------------------------------------------------------------------
class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b"the site\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


def test_in_headless_chromium_the_page_shows_versions_times_and_a_failed_install(with_plugins, agencystack_run,
                                                                                  agencystack_env, monkeypatch):
    from selenium.webdriver.common.by import By

    from tests.helpers import artifacts, chromium

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine: the edge is 127.0.0.1
    site = ThreadingHTTPServer(("127.0.0.1", free_port()), _Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    site_url = f"http://site.acme.localhost:{site.server_port}/"
    assert agencystack_run("install", "site", "-c", "acme", "--set", f"SITE_URL={site_url}").exit_code == 0
    failed = agencystack_run("install", "shop", "-c", "acme", "--set", "SHOP_FAIL=early")
    assert failed.exit_code == 1
    port = free_port()
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "agencystack"), "dashboard", "serve",
                                "-c", "acme", "--listen", f"127.0.0.1:{port}", "--interval", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        deadline = time.monotonic() + 30
        while True:  # the first probe of the site through "the edge" (loopback, its Host header)
            data = _get_json(f"http://127.0.0.1:{port}/api/dashboard.json")
            states = {c["name"]: c["live"]["state"] for c in (data or {}).get("components", [])}
            if states.get("site") == "running":
                break
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"the site was never probed healthy: {states}"
            time.sleep(0.3)
        shown = {c["name"]: c for c in data["components"]}
        assert shown["site"]["product_version"] == "4.2.0"
        assert shown["shop"]["last_action"]["outcome"] == "failed"
        site_at = shown["site"]["last_action"]["at"]

        driver = chromium("1280,800")
        driver.set_page_load_timeout(45)
        driver.get(f"http://127.0.0.1:{port}/")
        cards = {card.get_attribute("data-component"): card
                 for card in driver.find_elements(By.CSS_SELECTOR, "article.card")}
        assert {name: card.get_attribute("data-state") for name, card in cards.items()} == {
            "site": "running", "shop": "failed"}
        assert "4.2.0" in cards["site"].text and "plugin 1.2.3" in cards["site"].text
        [stamp] = cards["site"].find_elements(By.CSS_SELECTOR, "dd time")
        assert stamp.get_attribute("title") == site_at == stamp.get_attribute("datetime")
        assert re.fullmatch(r"just now|\d+ s ago|1 min ago", stamp.text), stamp.text
        # as the page computes it (chromedriver's own CSS query answers "normal" for this shorthand)
        assert driver.execute_script("return getComputedStyle(arguments[0]).whiteSpace", stamp) == "nowrap"
        failure = cards["shop"].find_element(By.CSS_SELECTOR, ".failure")
        assert "install failed" in failure.text
        assert "shop: upstream's files could not be fetched (failing early on purpose)" in failure.text
        assert driver.find_elements(By.CSS_SELECTOR, "a.signout") == []  # served by the CLI: no gate in front
        # the width is used: the two cards side by side, together wider than half the window
        first, second = cards["shop"].rect, cards["site"].rect
        assert first["y"] == second["y"] and first["x"] != second["x"]
        assert first["width"] + second["width"] > 640
        shot = artifacts() / "dashboard-page.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    finally:
        if driver is not None:
            driver.quit()
        process.terminate()
        process.wait(timeout=10)
        site.shutdown()


def test_the_reference_time_is_the_rendering():
    """Times are relative to the moment the page is rendered (it reloads itself): no fixed clock in the server."""
    page = _server().page({"client": "acme", "components": [_component("site", last_action={
        "action": "install", "outcome": "ok", "at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "error": None})]}, 15)
    assert ">5 min ago</time>" in page
