"""The rules that keep concurrent commands from destroying a client, without an engine: settings are loaded again
once the lock is held, a saved generated secret is never overwritten, the lock lets exactly one holder in even
though its file is deleted on every release, and host claims are read from what each component deployed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agencystack.errors import ComponentError, UsageError
from agencystack.settings import GlobalSettings
from agencystack.testing import open_context


def _open(plugins, client="acme", flags=None):
    return open_context(plugins, "hello", "install", client=client, flags=flags)


def test_a_call_that_waited_uses_the_secret_the_first_one_saved(with_plugins, agencystack_env):
    from agencystack.lifecycle import run
    from agencystack.logging import configure
    from agencystack.plugins import load

    plugins = load()
    first, second = _open(plugins), _open(plugins)
    configure(first.global_settings.state_root, first.redactor, quiet=True)  # both loaded before either held the lock
    assert first.settings.token.get_secret_value() != second.settings.token.get_secret_value()
    run(first, "install")
    saved = first.dir.read_env()["HELLO_TOKEN"]
    run(second, "install")  # waited on the lock in real life: loads again once it holds it
    assert second.settings.token.get_secret_value() == saved
    assert first.dir.read_env()["HELLO_TOKEN"] == saved
    calls = [json.loads(line) for line in (first.dir.path / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 2


def test_save_never_overwrites_a_secret_saved_since_the_load(with_plugins, agencystack_env):
    from agencystack.plugins import load

    plugins = load()
    late = _open(plugins)
    other = _open(plugins)
    other.dir.ensure()
    other.save_settings()  # saved by someone who did not wait for us
    with pytest.raises(ComponentError, match="HELLO_TOKEN was saved .* not overwriting it"):
        late.save_settings()
    assert other.dir.read_env()["HELLO_TOKEN"] == other.settings.token.get_secret_value()


def test_a_flag_cannot_replace_a_saved_generated_secret(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    env = agencystack_env / "clients" / "acme" / "hello" / ".env"
    before = env.read_text()
    token = next(line.split("=", 1)[1] for line in before.splitlines() if line.startswith("HELLO_TOKEN="))
    refused = agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_TOKEN=" + "x" * 40)
    assert refused.exit_code == 2 and "never overwritten" in refused.stderr and "x" * 40 not in refused.stderr
    assert env.read_text() == before
    assert agencystack_run("install", "hello", "-c", "acme", "--set", f"HELLO_TOKEN={token}").exit_code == 0


def test_empty_means_unset_only_where_the_default_is_empty(agencystack_env, monkeypatch, tmp_path):
    from agencystack import settings
    from agencystack_posthog.settings import PostHogSettings

    base = GlobalSettings.load()
    loaded = settings.load(PostHogSettings, base, tmp_path / ".env", {"POSTHOG_NODE_TAG": "", "POSTHOG_GEOIP_URL": ""})
    assert loaded.values.node_tag == "" and loaded.values.geoip_url == ""
    for key in ("POSTHOG_APP_TAG", "POSTHOG_POSTGRES_PASSWORD", "POSTHOG_DOMAIN"):
        with pytest.raises(UsageError, match=f"{key} is empty"):
            settings.load(PostHogSettings, base, tmp_path / ".env", {key: ""})
    monkeypatch.setenv("POSTHOG_SECRET", "")
    with pytest.raises(UsageError, match="POSTHOG_SECRET is empty \\(in the environment\\)"):
        settings.load(PostHogSettings, base, tmp_path / ".env")


def test_default_hosts_differ_per_client(agencystack_env, monkeypatch, tmp_path):
    from agencystack import settings
    from agencystack_posthog.settings import PostHogSettings

    monkeypatch.setenv("DOMAIN", "agency.com")
    base = GlobalSettings.load()
    domain = {c: settings.load(PostHogSettings, base, tmp_path / ".env", client=c).values.domain
              for c in ("default", "acme", "beta")}
    assert domain == {"default": "posthog.agency.com", "acme": "posthog.acme.agency.com",
                      "beta": "posthog.beta.agency.com"}


HOLD_AND_COUNT = """
import sys, time
from pathlib import Path
from agencystack.state import StateRoot
root, counter = StateRoot(Path(sys.argv[1])), Path(sys.argv[2])
for _ in range(40):
    with root.lifecycle_lock("acme", "hello", "install", 60):
        value = int(counter.read_text())
        time.sleep(0.001)
        counter.write_text(str(value + 1))
"""


def test_the_lock_admits_one_holder_although_its_file_is_deleted_on_release(tmp_path):
    counter = tmp_path / "counter"
    counter.write_text("0")
    workers = [subprocess.Popen([sys.executable, "-c", HOLD_AND_COUNT, str(tmp_path / "root"), str(counter)])
               for _ in range(4)]
    assert [w.wait(120) for w in workers] == [0, 0, 0, 0]
    assert counter.read_text() == "160"  # no lost update: never two holders at once
    assert list((tmp_path / "root" / "locks").iterdir()) == []  # and nothing left behind


def test_no_lock_file_outlives_a_command(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    assert agencystack_run("restart", "hello", "-c", "acme", "--service", "x y").exit_code == 2
    assert agencystack_run("uninstall", "hello", "-c", "acme", "--purge", "--yes").exit_code == 0
    assert list((agencystack_env / "locks").iterdir()) == []


COMPOSE = """
services:
  web:
    labels:
      traefik.enable: "true"
      traefik.http.routers.{client}_notes_web.rule: Host(`{host}`) && (Path(`/x`))
      traefik.http.routers.{client}_notes_web.priority: "10"
"""


def _deployed(root, client, host, last=("install", "ok")):
    from agencystack.state import ComponentDir

    cdir = ComponentDir(root, client, "notes")
    cdir.ensure()
    cdir.compose_file.write_text(COMPOSE.format(client=client, host=host))
    cdir.record(*last)


def test_host_holders_come_from_what_was_deployed(tmp_path):
    from agencystack import StateRoot, hosts

    _deployed(tmp_path, "acme", "notes.acme.example.com")
    _deployed(tmp_path, "gone", "old.example.com", last=("uninstall", "ok"))
    root = StateRoot(tmp_path)
    assert hosts.holders(root) == {"notes.acme.example.com": ("acme", "notes")}
    found = hosts.conflicts(root, "beta", "notes", ["Notes.Acme.Example.com", "old.example.com"])
    assert [str(c) for c in found] == ["notes.acme.example.com is already routed for client 'acme' (notes)"]
    assert hosts.conflicts(root, "acme", "notes", ["notes.acme.example.com"]) == []  # its own host
    with pytest.raises(UsageError, match="client 'acme'"):
        hosts.refuse(found, "notes", "beta")
