"""A component is installed from its first install, even a failed one (README): an install that failed after it
created its component's directory (PostHog's does, before it fetches upstream's files) records its failed outcome
and error in the manifest, and then ``status`` (one component, ``--json``, ``--all``) and the dashboard show it as
failed with that error -- not "absent / not installed". The install's own error and exit code are unchanged.
The fixture component ``site`` (tests/fixtures/thirdparty, site.py) runs no containers; its status hook answers
running once it is installed: what a failed install makes of it is the core's."""

from __future__ import annotations

import json

import pytest


def _document(root, client: str) -> dict:
    return json.loads((root / "dashboards" / client / "dashboard.json").read_text())


def test_a_failed_first_install_is_failed_with_its_error_in_status_and_on_the_dashboard(with_plugins, agencystack_run,
                                                                                        agencystack_env):
    failed = agencystack_run("install", "site", "-c", "acme", "--set", "SITE_FAIL=early")
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.strip() == "error: site: upstream's files could not be fetched (failing early on purpose)"
    directory = agencystack_env / "clients" / "acme" / "site"
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["last_action"]["action"] == "install" and manifest["last_action"]["outcome"] == "failed"
    assert manifest["error"] == "site: upstream's files could not be fetched (failing early on purpose)"
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json"]  # the record only: no settings saved

    shown = agencystack_run("status", "site", "-c", "acme", "--json")
    assert shown.exit_code == 1
    [row] = shown.json()
    assert row["state"] == "failed"  # whatever the component's own status hook answers
    assert row["message"] == (f"install failed at {manifest['last_action']['at']}: site: upstream's files could not "
                              "be fetched (failing early on purpose)")
    table = agencystack_run("status", "site", "-c", "acme")
    assert table.exit_code == 1 and "not installed" not in table.stdout
    assert "failed" in table.stdout and "failing early on purpose" in table.stdout

    [card] = _document(agencystack_env, "acme")["components"]
    assert card["name"] == "site" and card["last_action"]["outcome"] == "failed"
    assert card["last_action"]["error"] == manifest["error"] and card["product_version"] == "4.2.0"

    fixed = agencystack_run("install", "site", "-c", "acme")  # the next install that succeeds ends it
    assert fixed.exit_code == 0, fixed.output
    [row] = agencystack_run("status", "site", "-c", "acme", "--json").json()
    assert (row["state"], row["message"]) == ("running", "")
    assert _document(agencystack_env, "acme")["components"][0]["last_action"]["outcome"] == "ok"


def test_a_later_failed_install_is_failed_in_status_though_its_services_run(with_plugins, agencystack_run):
    assert agencystack_run("install", "site", "-c", "acme").exit_code == 0
    failed = agencystack_run("install", "site", "-c", "acme", "--set", "SITE_FAIL=late")
    assert failed.exit_code == 1
    [row] = agencystack_run("status", "site", "-c", "acme", "--json").json()
    assert row["state"] == "failed" and row["message"].endswith("failing late on purpose)")
    assert [s["state"] for s in row["services"]] == ["running"]  # the services as they are


def test_a_refused_install_still_writes_nothing(with_plugins, agencystack_run, agencystack_env):
    """Bad input (exit 2) is refused before the install runs: no directory, not installed, not on the dashboard."""
    refused = agencystack_run("install", "site", "-c", "acme", "--set", "SITE_FAIL=sometimes")
    assert refused.exit_code == 2
    assert not (agencystack_env / "clients" / "acme" / "site").exists()
    shown = agencystack_run("status", "site", "-c", "acme", "--json")
    assert shown.json()[0]["state"] == "absent"


@pytest.mark.engine
def test_status_all_shows_a_failed_first_install(with_plugins, agencystack_engine, agencystack_run):
    client = agencystack_engine.client
    assert agencystack_run("install", "site", "-c", client, "--set", "SITE_FAIL=early").exit_code == 1
    everything = agencystack_run("status", "--all", "--json")
    assert everything.exit_code == 1, everything.output
    [row] = [s for s in everything.json() if s["client"] == client]
    assert row["component"] == "site" and row["state"] == "failed"
    assert "install failed at " in row["message"] and "failing early on purpose" in row["message"]
    table = agencystack_run("status", "--all")
    assert any(client in line and "site" in line and "failed" in line for line in table.stdout.splitlines())
