"""``agencystack settings show COMPONENT -c CLIENT``: each resolved value with its layer, secrets masked."""

from __future__ import annotations

import json


def test_each_value_with_its_layer_and_secrets_masked(with_plugins, agencystack_run, agencystack_env, monkeypatch):
    assert agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=hey").exit_code == 0
    token = next(line.split("=", 1)[1] for line in
                 (agencystack_env / "clients/acme/hello/.env").read_text().splitlines() if line.startswith("HELLO_TOKEN="))
    monkeypatch.setenv("HELLO_PORT", "9090")
    shown = agencystack_run("settings", "show", "hello", "-c", "acme", "--json")
    assert shown.exit_code == 0, shown.output
    rows = {r["key"]: (r["value"], r["layer"], r["secret"]) for r in json.loads(shown.stdout)["settings"]}
    assert rows == {"HELLO_GREETING": ("hey", "file", False), "HELLO_PORT": ("9090", "environment", False),
                    "HELLO_TOKEN": ("********", "file", True)}
    flagged = agencystack_run("settings", "show", "hello", "-c", "acme", "--set", "HELLO_GREETING=yo")
    assert flagged.exit_code == 0, flagged.output
    lines = {line.split()[0]: line.split()[1:] for line in flagged.stdout.splitlines()[1:]}
    assert lines == {"HELLO_GREETING": ["yo", "--set"], "HELLO_PORT": ["9090", "environment"],
                     "HELLO_TOKEN": ["********", ".env"]}
    assert token not in shown.output + flagged.output
    assert "HELLO_GREETING=hey" in (agencystack_env / "clients/acme/hello/.env").read_text()  # nothing written


def test_a_new_client_shows_defaults_and_secrets_to_be_generated(with_plugins, agencystack_run, agencystack_env):
    shown = agencystack_run("settings", "show", "hello", "-c", "beta")
    assert shown.exit_code == 0, shown.output
    assert "HELLO_TOKEN" in shown.stdout and "generated (saved on install)" in shown.stdout
    assert "HELLO_GREETING  hi" in shown.stdout
    assert not (agencystack_env / "clients" / "beta").exists()


def test_bad_input_is_refused(with_plugins, agencystack_run):
    assert agencystack_run("settings", "show", "nope", "-c", "acme").exit_code == 2
    bad = agencystack_run("settings", "show", "hello", "-c", "acme", "--set", "HELLO_PORT=99999")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: invalid setting HELLO_PORT")
