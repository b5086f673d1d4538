# FROZEN COMPATIBILITY FIXTURE (plugin API 1.0.0, 2026-11-27): never edited to follow the code; only a major
# plugin API version may drop it, with an entry in CHANGELOG.md ("Plugin API").
"""Compat's tests, with AgencyStack's test kit (agencystack.testing) as it was on 2026-11-27."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agencystack import GlobalSettings
from agencystack.testing import assert_backup_roundtrip, assert_idempotent


def dashboard_context(client):
    """The dashboard's context of a client, as the 2026-11-27 docs described it."""
    return SimpleNamespace(client=client, base=GlobalSettings.load())


def test_the_stack_routes_its_domain_and_references_its_secret(agencystack_context):
    context = agencystack_context("compat", client="t1")
    stack = context.stack()
    assert {s.name for s in stack.services} == {"web", "db", "migrate"}
    assert [r.host for r in stack.routes] == ["compat.t1.localhost"]
    password = context.settings.db_password.get_secret_value()
    assert len(password) == 48 and password not in stack.model_dump_json()


def test_the_listing_shows_the_component(agencystack_run):
    result = agencystack_run("components", "list")
    assert result.exit_code == 0 and "compat" in result.stdout


def test_no_tile_for_a_client_without_compat(agencystack_plugins):
    entries = agencystack_plugins.dashboard_entries(dashboard_context("t1"))
    assert [e for e in entries if e.component == "compat"] == []


@pytest.mark.engine
def test_install_is_idempotent_served_and_tiled(agencystack_engine, agencystack_run, agencystack_plugins):
    client = agencystack_engine.client
    assert_idempotent("compat", client)
    assert agencystack_engine.get(agencystack_engine.url(f"compat.{client}.localhost")) == (200, "Compat\n")
    status = agencystack_run("status", "compat", "-c", client, "--json")
    assert status.exit_code == 0 and status.json()[0]["state"] == "running"
    tiles = [e for e in agencystack_plugins.dashboard_entries(dashboard_context(client)) if e.component == "compat"]
    assert [(t.client, t.title) for t in tiles] == [(client, "Compat")]


@pytest.mark.engine
def test_backup_destroy_restore_keeps_the_data(agencystack_engine, agencystack_run):
    client = agencystack_engine.client
    assert agencystack_run("install", "compat", "-c", client).exit_code == 0

    def sql(statement: str) -> str:
        return agencystack_engine.exec("compat", "db", "psql", "-U", "compat", "-d", "compat", "-At", "-c",
                                       statement, client=client).strip()

    def write() -> str:
        sql("INSERT INTO notes VALUES ('written before the backup')")
        return "written before the backup"

    assert_backup_roundtrip("compat", client, write=write, read=lambda: sql("SELECT body FROM notes"))
