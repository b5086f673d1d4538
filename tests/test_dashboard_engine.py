"""The agency dashboard on the real engine, through the real edge: ``install dashboard`` serves the client's page at
dashboard.<client>.<DOMAIN>; its JSON API and headless Chromium (Debian's chromium + chromium-driver) see every
installed component with its live health, a stopped component turns to failed within 60 s, and screenshots are
left in $AGENCYSTACK_TEST_ARTIFACTS (default /tmp/agencystack-test-artifacts).

The dashboard runs in the local plain Python image (tests/images: ``python``); the components beside it are the
fixture components tier-base and tier-right (tests/fixtures/thirdparty, tiers.py), routed through the edge.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine


@pytest.fixture
def dashboard(with_plugins, agencystack_engine, agencystack_run, images, monkeypatch):
    client = agencystack_engine.client
    for key, value in {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "DASHBOARD_IMAGE": images["python"],
                       "DASHBOARD_PROBE_INTERVAL": "2", "TIER_BASE_DELAY": "0", "TIER_RIGHT_DELAY": "0",
                       "TIER_BASE_DOMAIN": f"base.{client}.localhost",
                       "TIER_RIGHT_DOMAIN": f"right.{client}.localhost"}.items():
        monkeypatch.setenv(key, value)
    installed = agencystack_run("install", "dashboard", "-c", client)
    assert installed.exit_code == 0, installed.output
    assert "SSO unprotected" in installed.stdout  # no identity provider for this client: said, not hidden
    right = agencystack_run("install", "tier-right", "-c", client)  # tier-base first (requires)
    assert right.exit_code == 0, right.output
    return {"client": client, "url": agencystack_engine.url(f"dashboard.{client}.localhost", "/")}


def _api(engine, url: str) -> dict | None:
    """The JSON API through the edge; None until the edge routes the dashboard (it applies labels seconds later)."""
    status, body = engine.get(url.rstrip("/") + "/api/dashboard.json")
    return json.loads(body) if status == 200 else None


def _until(predicate, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_the_json_api_through_the_edge_shows_every_component_live(dashboard, agencystack_engine, docker_client):
    def live():
        data = _api(agencystack_engine, dashboard["url"]) or {"components": []}
        states = {c["name"]: c["live"]["state"] for c in data["components"]}
        return data if states == dict.fromkeys(("dashboard", "tier-base", "tier-right"), "running") else None

    data = _until(live, 120)  # the first probes, on a loaded host
    assert data, _api(agencystack_engine, dashboard["url"])
    assert (data["schema"], data["version"], data["client"]) == ("agencystack.dashboard", 1, dashboard["client"])
    shown = {c["name"]: c for c in data["components"]}
    assert shown["tier-right"]["url"] == agencystack_engine.url(f"right.{dashboard['client']}.localhost", "/")
    assert shown["dashboard"]["sso"]["state"] == "unprotected"
    assert all(c["live"]["age"] is not None and c["live"]["age"] < 60 for c in data["components"])
    status, page = agencystack_engine.get(dashboard["url"])
    assert status == 200 and "<script" not in page and "https://" not in page.split("<body")[0]  # nothing remote

    found = docker_client.containers.get(f"{dashboard['client']}_dashboard-web-1")
    container = found.attrs
    mounts = {m["Destination"]: m for m in container["Mounts"]}
    assert set(mounts) == {"/app", "/data", "/private"} and not any(m["RW"] for m in mounts.values())  # no socket
    assert mounts["/data"]["Source"].endswith(f"/dashboards/{dashboard['client']}")  # the published document only
    assert container["Config"]["User"] == "65534:65534"
    # the cards' secrets (none here): a file only this container's user reads, never in the published directory
    private = Path(mounts["/private"]["Source"])
    assert private.name == dashboard["client"] and private.parent.name == "dashboards-private"
    credentials = private / "credentials.json"
    assert oct(private.stat().st_mode & 0o777) == "0o700" and oct(credentials.stat().st_mode & 0o777) == "0o600"
    assert (credentials.stat().st_uid, private.stat().st_uid) == (65534, 65534)
    code, out = found.exec_run(["python3", "-c", "import json; print(json.load(open('/private/credentials.json')))"])
    assert (code, out.decode().strip()) == (0, "{}")


def test_in_headless_chromium_a_stopped_component_turns_failed_within_60_s(dashboard, agencystack_engine,
                                                                          docker_client):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By

    from tests.helpers import artifacts, chromium

    # the browser only once the edge routes the page: before that, the edge's catch-all HTTP->HTTPS redirect answers
    # (a permanent redirect Chromium caches: every later load of the URL would end at the HTTPS port)
    assert _until(lambda: agencystack_engine.get(dashboard["url"])[0] == 200, 120), "the edge never routed the page"
    folder = artifacts()
    driver = chromium()

    def cards() -> dict[str, str]:
        try:
            driver.get(dashboard["url"])
        except TimeoutException:  # a renderer starved on a loaded host: ask again
            return {}
        return {card.get_attribute("data-component"): card.get_attribute("data-state")
                for card in driver.find_elements(By.CSS_SELECTOR, "article.card")}

    try:
        driver.set_page_load_timeout(45)
        everything = dict.fromkeys(("dashboard", "tier-base", "tier-right"), "running")
        assert _until(lambda: cards() == everything, 120), (
            dashboard["url"], cards(), driver.title, re.findall(r"(?:ERR|NET)_[A-Z_]+", driver.page_source),
            agencystack_engine.get(dashboard["url"])[0])
        assert driver.title == f"{dashboard['client']} · AgencyStack"
        styled = driver.find_element(By.CSS_SELECTOR, "article.card").value_of_css_property("border-top-color")
        assert styled not in ("", "rgba(0, 0, 0, 0)")  # the local stylesheet applied (no CDN)
        shot = folder / "dashboard-chromium.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000

        docker_client.containers.get(f"{dashboard['client']}_tier-right-web-1").stop(timeout=1)
        stopped = time.monotonic()
        assert _until(lambda: cards().get("tier-right") == "failed", 60, 2), cards()
        assert time.monotonic() - stopped < 60
        assert cards()["tier-base"] == "running"
        shot = folder / "dashboard-chromium-failed.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    finally:
        driver.quit()


def test_uninstall_purge_removes_the_cards_secrets(dashboard, agencystack_engine, agencystack_run):
    """The credentials directory (the cards' secrets, e.g. PostHog's personal API key) goes with --purge; a plain
    uninstall keeps it, as it keeps the data."""
    private = agencystack_engine.root / "dashboards-private" / dashboard["client"]
    assert private.is_dir()
    kept = agencystack_run("uninstall", "dashboard", "-c", dashboard["client"], "--yes")
    assert kept.exit_code == 0, kept.output
    assert private.is_dir()
    purged = agencystack_run("uninstall", "dashboard", "-c", dashboard["client"], "--purge", "--yes")
    assert purged.exit_code == 0, purged.output
    assert not private.exists()
