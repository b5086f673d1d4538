"""Settings layers (flag > environment > the client's .env > defaults), generated secrets, file modes."""

from __future__ import annotations

import json
import stat

import pytest


def env_file(root, client="default", component="hello"):
    return root / "clients" / client / component / ".env"


def installed_greeting(root, client="default"):
    lines = (root / "clients" / client / "hello" / "calls.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["greeting"]


def test_precedence_flag_over_env_over_file_over_default(with_plugins, agencystack_run, agencystack_env,
                                                        monkeypatch):
    assert agencystack_run("install", "hello").exit_code == 0
    assert installed_greeting(agencystack_env) == "hi"  # default
    assert "HELLO_GREETING" not in env_file(agencystack_env).read_text()  # defaults are never written

    assert agencystack_run("install", "hello", "--set", "HELLO_GREETING=from-flag").exit_code == 0
    assert "HELLO_GREETING=from-flag" in env_file(agencystack_env).read_text()  # flags stick
    assert agencystack_run("install", "hello").exit_code == 0
    assert installed_greeting(agencystack_env) == "from-flag"  # the file layer

    monkeypatch.setenv("HELLO_GREETING", "from-env")
    assert agencystack_run("install", "hello").exit_code == 0
    assert installed_greeting(agencystack_env) == "from-env"  # environment beats the file
    assert "from-env" not in env_file(agencystack_env).read_text()  # and is not saved

    assert agencystack_run("install", "hello", "--set", "greeting=flag-wins").exit_code == 0
    assert installed_greeting(agencystack_env) == "flag-wins"  # the flag beats the environment


def test_generated_secret_is_written_once_and_kept(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello").exit_code == 0
    first = env_file(agencystack_env).read_bytes()
    assert b"HELLO_TOKEN=" in first
    token = [line for line in first.decode().splitlines() if line.startswith("HELLO_TOKEN=")][0].split("=", 1)[1]
    assert len(token) == 40
    for _ in range(2):
        assert agencystack_run("install", "hello", "--set", "HELLO_PORT=9000").exit_code == 0
    assert f"HELLO_TOKEN={token}" in env_file(agencystack_env).read_text()


def test_secret_files_are_0600_and_their_directories_0700(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "--client-id", "acme").exit_code == 0
    path = env_file(agencystack_env, "acme")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    manifest = path.parent / "manifest.json"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600


def test_clients_have_separate_settings(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "one").exit_code == 0
    assert agencystack_run("install", "hello", "-c", "two").exit_code == 0
    one, two = env_file(agencystack_env, "one").read_text(), env_file(agencystack_env, "two").read_text()
    token = lambda text: [x for x in text.splitlines() if x.startswith("HELLO_TOKEN")][0]  # noqa: E731
    assert token(one) != token(two)


def test_manifest_records_versions_timestamps_and_outcome(with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    manifest = json.loads((agencystack_env / "clients/acme/hello/manifest.json").read_text())
    assert manifest["last_action"]["action"] == "install" and manifest["last_action"]["outcome"] == "ok"
    assert manifest["client"] == "acme" and manifest["component"] == "hello"
    assert manifest["created_at"] and manifest["updated_at"]


def test_failed_action_is_recorded_and_exits_non_zero(with_plugins, agencystack_run, agencystack_env):
    result = agencystack_run("install", "hello", "--set", "HELLO_GREETING=fail")
    assert result.exit_code != 0
    manifest = json.loads((agencystack_env / "clients/default/hello/manifest.json").read_text())
    assert manifest["last_action"]["outcome"] == "failed"


def test_posthog_settings_defaults_follow_the_seed(agencystack_env, monkeypatch):
    from agencystack.plugins import load
    from agencystack.settings import GlobalSettings, load as load_settings

    monkeypatch.setenv("DOMAIN", "acme.com")
    model = load().component("posthog").settings_model()
    loaded = load_settings(model, GlobalSettings.load(), env_file(agencystack_env, component="posthog"))
    assert loaded.values.domain == "posthog.acme.com"
    assert loaded.values.port == 8000
    assert len(loaded.values.secret.get_secret_value()) == 96  # hex of 48 random bytes
    assert "POSTHOG_SECRET" in loaded.generated and "POSTHOG_DOMAIN" not in loaded.to_save
    assert "POSTHOG_SECRET" in loaded.to_save


@pytest.mark.parametrize("value", ["8000", 8000])
def test_port_values_parse_from_text(value, agencystack_env):
    from agencystack.plugins import load
    from agencystack.settings import GlobalSettings, load as load_settings

    model = load().component("posthog").settings_model()
    loaded = load_settings(model, GlobalSettings.load(), env_file(agencystack_env, component="posthog"),
                           {"POSTHOG_PORT": str(value)})
    assert loaded.values.port == 8000
