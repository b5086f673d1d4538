"""Logs: one JSON line per action in the component's log; no secret value anywhere a user or a log can see it."""

from __future__ import annotations

import json

import pytest


def secret_values(root):
    values = []
    for env in root.glob("clients/*/*/.env"):
        for line in env.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.endswith(("TOKEN", "SECRET", "PASSWORD")) and value:
                values.append(value)
    return values


def test_each_action_appends_a_json_line_with_client_component_action_duration_outcome(
        with_plugins, agencystack_run, agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    assert agencystack_run("restart", "hello", "-c", "acme").exit_code == 0
    log = agencystack_env.parent / "log" / "components" / "hello.log"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    outcomes = [r for r in records if "outcome" in r]
    assert [r["action"] for r in outcomes] == ["install", "restart"]
    for record in outcomes:
        assert record["client"] == "acme" and record["component"] == "hello"
        assert record["outcome"] == "ok" and isinstance(record["duration"], float)


def test_no_secret_in_console_logs_manifest_or_errors(with_plugins, agencystack_run, agencystack_env):
    seen = []
    seen.append(agencystack_run("install", "hello", "-c", "acme", "--json"))
    seen.append(agencystack_run("install", "hello", "-c", "acme"))  # the plugin logs its token: must be masked
    seen.append(agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=fail"))  # error text
    seen.append(agencystack_run("-v", "install", "hello", "-c", "acme", "--set", "HELLO_GREETING=fail"))
    seen.append(agencystack_run("status", "hello", "-c", "acme", "--json"))
    secrets = secret_values(agencystack_env)
    assert secrets, "the fixture component must have generated a secret"
    texts = [r.output for r in seen]
    texts += [p.read_text() for p in (agencystack_env.parent / "log").rglob("*.log")]
    texts += [p.read_text() for p in agencystack_env.rglob("manifest.json")]
    assert any("***" in t for t in texts), "the redactor should have masked the logged token"
    for secret in secrets:
        for text in texts:
            assert secret not in text
    assert "unexpected RuntimeError" in seen[2].stderr and seen[2].stderr.count("\n") == 1
    assert "Traceback" in seen[3].stderr  # -v shows the traceback, still redacted


def test_redactor_masks_nested_values():
    from agencystack.logging import Redactor

    redactor = Redactor()
    redactor.add("s3cr3t-value", "abc")  # too short to mask safely: ignored
    event = redactor(None, "info", {"event": "x s3cr3t-value y", "nested": {"a": ["s3cr3t-value"]}, "n": 1})
    assert event == {"event": "x *** y", "nested": {"a": ["***"]}, "n": 1}
    assert redactor.text("abc") == "abc"


def test_engine_errors_mask_secret_values_only(tmp_path):
    """The driver quotes the engine through the one redactor, built from the deployment's secrets: an image
    reference and a host name stay readable, a secret value in the same message is masked."""
    import docker.errors

    from agencystack.engine import Deployment
    from agencystack.engine.converge import Converger
    from agencystack.stack import Service, Stack

    message = "No such image: postgres:15.12-alpine; host posthog.acme.com"
    service = Service(name="db", image="postgres:15.12-alpine")
    deployment = Deployment(
        project="acme_posthog", client="acme", component="posthog", stack=Stack(services=[service]),
        env={"POSTHOG_DB_IMAGE": "postgres:15.12-alpine", "POSTHOG_DOMAIN": "posthog.acme.com",
             "POSTHOG_SECRET_KEY": "s3cr3t-k3y-value"},
        directory=tmp_path, secret_keys=frozenset({"POSTHOG_SECRET_KEY"}))
    refused = docker.errors.APIError("500 Server Error", explanation=f"{message}; key s3cr3t-k3y-value")
    error = Converger(client=None)._service_error(deployment, service, "cannot be created", refused)
    assert str(error) == f"service db of acme_posthog cannot be created: {message}; key ***"
    assert deployment.redactor().text(message) == message


@pytest.mark.parametrize("command", ["plan", "install"])
def test_stack_with_a_literal_secret_value_is_refused_naming_service_and_variable(with_plugins, agencystack_run,
                                                                                 agencystack_env, command):
    result = agencystack_run(command, "leaky", "-c", "acme")
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "leaky" in line and "service app" in line and "API_URL" in line and "LEAKY_TOKEN" in line
    assert not list(agencystack_env.rglob("compose.yaml"))  # refused before anything was written
