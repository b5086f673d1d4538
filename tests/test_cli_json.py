"""Under ``--json`` every command prints exactly one JSON document on stdout, failures included, and each one
matches docs/cli-json.schema.json (docs/cli-json.md): usage errors, engine unreachable (3), lock busy (4), damaged
archive (5), interrupted (130), a plugin's bug (1, redacted). No engine is needed: DOCKER_HOST names a socket that
does not exist, so any engine call is exit 3 at once."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from agencystack.errors import KINDS

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "cli-json.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def one_document(result) -> dict | list:
    """stdout is exactly one JSON document matching the schema; a failure also says so in one stderr line."""
    document = json.loads(result.stdout)  # raises on two documents or trailing text
    VALIDATOR.validate(document)
    if isinstance(document, dict) and document.get("ok") is False and "error" in document:
        assert document["exit_code"] == result.exit_code
        assert KINDS[document["error"]["kind"]] == result.exit_code, document
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and document["error"]["message"] in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    return document


@pytest.fixture
def no_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")


USAGE = [
    ["install", "nope"], ["install", "hello", "-c", "../x"], ["plan", "hello", "--set", "HELLO_NOPE=1"],
    ["status"], ["status", "posthog", "-c", "Bad"], ["logs", "hello", "-c", "acme"], ["logs", "hello", "--follow"],
    ["restart", "hello", "--service", "x y"], ["uninstall", "nope"], ["doctor", "--bogus"],
    ["restore", "hello", "--from", "/nonexistent.tar"], ["render", "nope"], ["render", "posthog", "--tail", "1"],
    ["move"], ["move", "-c", "acme", "--finalize", "--rollback"], ["components", "list", "--bogus"],
    ["component", "new", "Bad"], ["backup", "hello", "--keep-last", "0"], ["backup"], ["backup", "list", "-c", "Bad"],
    ["backup", "verify", "/nonexistent.tar"], ["settings", "show", "nope"], ["settings"],
    ["sso", "users", "add", "not-an-email"], ["sso", "users", "list", "-c", "Bad"], ["sso", "rotate", "nope"],
    ["sso"], ["dashboard", "serve", "--listen", "nowhere"], ["hosts", "add", "Bad Name", "--docker-host", "unix:///x"],
    ["hosts", "remove", "nosuch"], ["hosts", "list", "--bogus"], ["instal", "hello"], [],
]


@pytest.mark.parametrize("argv", USAGE, ids=[" ".join(a) or "(nothing)" for a in USAGE])
@pytest.mark.parametrize("where", ["before", "after"])
def test_bad_input_is_one_failure_document(with_plugins, agencystack_run, agencystack_env, no_engine, argv, where):
    args = ["--json", *argv] if where == "before" or not argv else [*argv, "--json"]
    result = agencystack_run(*args)
    document = one_document(result)
    assert result.exit_code == 2, result.output
    assert document["error"]["kind"] == "usage"
    assert not agencystack_env.exists(), "bad input writes nothing"


@pytest.mark.parametrize("argv", [["install", "posthog"], ["status", "posthog"], ["status", "--all"],
                                  ["plan", "posthog", "-c", "acme"]])
def test_engine_unreachable_is_exit_3_as_a_document(agencystack_run, no_engine, tmp_path, argv):
    result = agencystack_run("--json", *argv)
    document = one_document(result)
    assert result.exit_code == 3 and document["error"]["kind"] == "engine_unreachable"
    assert "no-engine.sock" in document["error"]["message"]


def test_a_held_lock_is_exit_4_as_a_document(with_plugins, agencystack_run, agencystack_env, monkeypatch):
    from agencystack.state import StateRoot

    monkeypatch.setenv("AGENCYSTACK_LOCK_TIMEOUT", "0.2")
    with StateRoot(agencystack_env).lifecycle_lock("acme", "hello", "install", 5):
        result = agencystack_run("install", "hello", "-c", "acme", "--json")
    document = one_document(result)
    assert result.exit_code == 4 and document["error"]["kind"] == "lock_busy"


def test_a_damaged_archive_is_exit_5_as_a_document(with_plugins, agencystack_run, agencystack_env, no_engine,
                                                    tmp_path):
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(b"not an archive at all" * 10)
    for argv in (["backup", "verify", str(damaged)], ["restore", "hello", "-c", "acme", "--from", str(damaged)]):
        result = agencystack_run("--json", *argv)
        document = one_document(result)
        assert result.exit_code == 5 and document["error"]["kind"] == "backup", argv


def test_interrupted_and_failed_components_are_documents(with_plugins, agencystack_run, monkeypatch):
    """Ctrl-C and a component's failure, raised where the lifecycle runs (a real one needs a terminal or a
    component that fails on purpose: this raises them in the install itself)."""
    from agencystack import lifecycle
    from agencystack.errors import ComponentError

    for raised, code, kind in ((KeyboardInterrupt(), 130, "interrupted"),
                               (ComponentError("web did not become healthy"), 1, "component_failed")):
        def install(context, raised=raised):
            raise raised

        monkeypatch.setattr(lifecycle, "install", install)
        result = agencystack_run("--json", "install", "hello", "-c", "acme")
        document = one_document(result)
        assert result.exit_code == code and document["error"]["kind"] == kind


def test_a_plugin_bug_is_exit_1_unexpected_and_redacted(with_plugins, agencystack_run, agencystack_env):
    result = agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=fail", "--json")
    document = one_document(result)
    assert result.exit_code == 1 and document["error"]["kind"] == "unexpected"
    assert document["error"]["hint"] == "run with -v for the traceback"
    token = (agencystack_env / "clients" / "acme" / "hello" / ".env").read_text().split("HELLO_TOKEN=")[1].split()[0]
    assert token.strip("'\"") not in result.stdout + result.stderr


def test_a_value_that_reads_like_the_flag_is_a_value(with_plugins, agencystack_run, agencystack_env):
    for argv in (["install", "hello", "--set", "--json"], ["install", "hello", "--set", "X=--json"],
                 ["install", "hello", "--", "--json"]):
        result = agencystack_run(*argv)
        assert result.exit_code == 2 and result.stdout == "", (argv, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_results_keep_their_shapes_and_match_the_schema(with_plugins, agencystack_run, agencystack_env, no_engine,
                                                        tmp_path):
    def result_of(*argv, code=0):
        result = agencystack_run("--json", *argv)
        assert result.exit_code == code, (argv, result.output)
        return one_document(result)

    assert any(row["name"] == "hello" for row in result_of("components", "list"))
    assert result_of("install", "hello", "-c", "acme")["summary"].startswith("hello for acme: ")
    assert result_of("status", "hello", "-c", "acme")[0]["state"] == "running"
    assert result_of("settings", "show", "hello", "-c", "acme")["component"] == "hello"
    assert result_of("backup", "list", "-c", "acme") == []
    assert result_of("restart", "hello", "-c", "acme")["summary"] == "restarted"
    rendered = result_of("render", "posthog", "-c", "acme")
    assert rendered["compose"].startswith("# Rendered by agencystack") and rendered["component"] == "posthog"
    assert result_of("hosts", "list")[0]["reachable"] is False
    assert result_of("component", "new", "widget", "--dir", str(tmp_path / "widget"))["name"] == "widget"
    checks = result_of("doctor", code=1)  # the engine check fails: a result, exit 1, not a failure document
    assert any(c["result"] == "fail" for c in checks)
    assert result_of("uninstall", "hello", "-c", "acme")["summary"] == "removed"
