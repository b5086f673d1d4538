"""The dashboard registry document (docs/dashboard.md, docs/dashboard.schema.json): written atomically after every
lifecycle action, valid against the documented schema, free of secrets, with the plugin's entries from a typed,
read-only context. The fixture component ``hello`` runs no containers; its tile quotes its secret on purpose."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import jsonschema
import pytest

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "dashboard.schema.json").read_text())


def _document(root: Path, client: str = "acme") -> dict:
    path = root / "clients" / client / "dashboard.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    published = root / "dashboards" / client / "dashboard.json"
    assert published.read_text() == text and stat.S_IMODE(published.stat().st_mode) == 0o644
    assert sorted(p.name for p in published.parent.iterdir()) == ["dashboard.json"]  # nothing else to mount
    document = json.loads(text)
    jsonschema.validate(document, SCHEMA)
    return document


def test_every_action_rewrites_the_document_valid_and_without_secrets(with_plugins, agencystack_run,
                                                                      agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=hi").exit_code == 0
    document = _document(agencystack_env)
    assert (document["schema"], document["version"], document["client"]) == ("agencystack.dashboard", 1, "acme")
    [hello] = document["components"]
    assert hello["name"] == "hello" and hello["version"] == "1.2.3"
    assert hello["product_version"] == "" and hello["entries"][0]["product_version"] == ""  # none stated
    assert hello["last_action"] == {"action": "install", "outcome": "ok", "at": hello["last_action"]["at"],
                                    "error": None}
    assert hello["last_backup"] is None and hello["entries_error"] is None
    [entry] = hello["entries"]
    assert entry["title"] == "Hello: hi" and entry["links"] == {"last action": "install"}
    token = dict(line.split("=", 1) for line in
                 (agencystack_env / "clients" / "acme" / "hello" / ".env").read_text().splitlines()
                 if line.startswith("HELLO_TOKEN="))["HELLO_TOKEN"]
    assert token not in json.dumps(document) and entry["description"].startswith("careless: ")

    failed = agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=fail")
    assert failed.exit_code == 1
    [hello] = _document(agencystack_env)["components"]
    assert hello["last_action"]["outcome"] == "failed" and "install failed on purpose" in hello["last_action"]["error"]
    assert token not in json.dumps(_document(agencystack_env))

    assert agencystack_run("restart", "hello", "-c", "acme").exit_code == 0
    assert _document(agencystack_env)["components"][0]["last_action"]["action"] == "restart"
    assert agencystack_run("uninstall", "hello", "-c", "acme").exit_code == 0
    assert _document(agencystack_env)["components"] == []  # not installed any more: not on the dashboard


def test_the_hook_gets_a_read_only_typed_context(with_plugins, agencystack_run, agencystack_env):
    from agencystack import DashboardContext
    from agencystack.plugins import load

    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    seen = []
    plugins = load()

    class Spy:
        from agencystack import hookimpl

        @hookimpl
        def dashboard_entries(self, context):
            seen.append(context)
            return []

    plugins.register(Spy(), "spy")  # a core-less plugin owning no component: targeted calls never reach it
    from agencystack import dashboard_registry
    from agencystack.settings import GlobalSettings

    document = dashboard_registry.write(plugins, GlobalSettings.load(), "acme")
    assert seen == [] and document["components"][0]["entries"][0]["component"] == "hello"

    context = DashboardContext(client="acme", component=plugins.component("hello"), settings=None,
                               manifest=__import__("types").MappingProxyType({"a": 1}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.client = "other"
    with pytest.raises(TypeError):
        context.manifest["a"] = 2


def test_an_entrys_secrets_go_to_the_dashboards_credentials_file_only(with_plugins, agencystack_run,
                                                                      agencystack_env):
    """DashboardEntry.secrets (e.g. PostHog's personal API key for its usage figures) never reach the document; the
    core writes them to <root>/dashboards-private/<client>/credentials.json (0600, owned like its directory), and
    only once a dashboard created that directory."""
    credentials = agencystack_env / "dashboards-private" / "acme" / "credentials.json"
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    token = dict(line.split("=", 1) for line in
                 (agencystack_env / "clients" / "acme" / "hello" / ".env").read_text().splitlines()
                 if line.startswith("HELLO_TOKEN="))["HELLO_TOKEN"]
    [entry] = _document(agencystack_env)["components"][0]["entries"]
    assert entry["usage"] == {"kind": "http-json-query", "credential": "HELLO_TOKEN", "path": "/figures"}
    assert "secrets" not in entry and token not in json.dumps(_document(agencystack_env))
    assert not credentials.parent.exists()  # no dashboard: the secret is written nowhere else

    credentials.parent.mkdir(parents=True, mode=0o700)  # what the dashboard's install does
    assert agencystack_run("restart", "hello", "-c", "acme").exit_code == 0
    assert json.loads(credentials.read_text()) == {"hello": {"HELLO_TOKEN": token}}
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert credentials.stat().st_uid == credentials.parent.stat().st_uid
    assert token not in json.dumps(_document(agencystack_env))

    assert agencystack_run("uninstall", "hello", "-c", "acme").exit_code == 0
    assert json.loads(credentials.read_text()) == {}  # not installed any more: its secret is gone from the file


def test_last_backup_is_what_the_backup_noted_and_says_when_the_file_went_or_changed(tmp_path):
    """The card's backup line comes from the manifest (noted once the archive was committed) and a stat of the file:
    whole as written, gone, or changed since."""
    from agencystack.dashboard_registry import _last_backup

    archive = tmp_path / "hello-acme.tar.zst"
    archive.write_bytes(b"x" * 100)
    noted = {"archive": str(archive), "at": "2026-11-28T00:00:00Z", "size": 100, "state": "ok"}
    assert _last_backup({}) is None
    assert _last_backup({"last_backup": noted}) == {**noted, "verified": True}
    archive.write_bytes(b"x" * 60)
    changed = _last_backup({"last_backup": noted})
    assert changed["verified"] is False and changed["size"] == 60 and changed["state"].startswith("damaged")
    archive.unlink()
    assert _last_backup({"last_backup": noted}) == {**noted, "size": None, "verified": False, "state": "missing"}
