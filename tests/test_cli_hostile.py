"""Hostile input, generated (Hypothesis): unicode, control characters, very long values, shell metacharacters, path
traversal and lookalike ids, in every command's options and in the environment, through the CLI in-process with a
private state root. Whatever comes: no traceback, an exit code of the documented set, under ``--json`` one document
matching docs/cli-json.schema.json, and on exit 2 the state root and log dir byte-for-byte as they were.

No engine: DOCKER_HOST names a socket that does not exist, so any engine call is exit 3 at once. The normal suite
runs a few examples (seconds); ``pytest -m hostile_long tests/test_cli_hostile.py`` runs many more."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agencystack.errors import EXIT_CODES
from tests.helpers import state_hash

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "cli-json.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

NASTY = ["../x", "../../etc/passwd", "/etc", "host", "host-x", "host-", "default", "acme", "Acme", "a" * 33,
         "x;rm -rf /", "$(id)", "`id`", "${POSTHOG_SECRET}", "$HOME", "a|b", "a&&b", "'", '"', "\\", "-", "--",
         "--json", "-v", "--help-me", "x\ny", "x\r\ny", "\x1b[31mred", "\x00", "\x7f", "\u202etxt", "ａcme",
         "posthog", "hello", "edge", "demo-core", "list", "create", "0", "-1", "99999999999999999999", "1.5",
         "10m", "2026-13-45T99:00:00Z", "x=y", "=", "KEY=", "HELLO_GREETING=x\ny", "POSTHOG_APP_TAG=a;b",
         "analytics.acme.com", "bad_domain..com", "http://x.com", "ünïcödé", "😀", "x" * 5000]
VALUE = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.text(alphabet=st.characters(max_codepoint=0x7f),
                                                                        max_size=12))

#: every command's options, each with one hostile value V (no command here may serve, follow, or write outside
#: the test's directory: no --dir or --dest taking V, no dashboard that could start listening)
COMMANDS = [
    ["install", "hello", "-c", "V"], ["install", "hello", "--set", "HELLO_GREETING=V"], ["install", "V"],
    ["install", "demo-core", "-c", "V"], ["install", "hello", "--set", "V"], ["plan", "posthog", "--domain", "V"],
    ["plan", "hello", "--set", "HELLO_PORT=V"], ["render", "posthog", "--set", "POSTHOG_APP_TAG=V"],
    ["render", "posthog", "-c", "V"], ["render", "V"], ["status", "V"], ["status", "hello", "-c", "V"],
    ["status", "--all", "--host", "V"], ["logs", "hello", "--since", "V"], ["logs", "hello", "--tail", "V"],
    ["logs", "hello", "--service", "V"], ["logs", "V", "-c", "V"], ["restart", "hello", "--service", "V"],
    ["restart", "V"], ["uninstall", "V", "-c", "V"], ["uninstall", "hello", "-c", "V", "--purge"],
    ["backup", "V"], ["backup", "hello", "-c", "V", "--keep-last", "V"], ["backup", "list", "-c", "V"],
    ["backup", "list", "V"], ["backup", "verify", "V"], ["restore", "hello", "--from", "V"],
    ["restore", "V", "--from", "V"], ["settings", "show", "hello", "--set", "V"], ["settings", "show", "V"],
    ["components", "list", "V"], ["component", "new", "V", "--dir", "{tmp}/new"], ["hosts", "add", "V",
    "--docker-host", "unix:///nonexistent.sock"], ["hosts", "remove", "V"], ["move", "-c", "V", "--to", "V"],
    ["move", "-c", "acme", "--to", "V"], ["sso", "users", "add", "V"], ["sso", "users", "list", "-c", "V"],
    ["sso", "rotate", "V"], ["dashboard", "serve", "-c", "V", "--listen", "nowhere"], ["doctor", "V"], ["V"], ["V", "V"],
]
ENVIRONMENT = ["DOMAIN", "CLIENT_ID", "AGENCYSTACK_LOCK_TIMEOUT", "AGENCYSTACK_PLUGINS", "AGENCYSTACK_HOST_NAMESPACE",
               "AGENCYSTACK_MEMORY_OVERCOMMIT", "AGENCYSTACK_ROOT"]


def check(run, root: Path, tmp: Path, argv: list[str], env: dict[str, str], json_flag: bool) -> None:
    logs = root.parent / "log"
    before = state_hash(root, logs)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = run(*(["--json"] if json_flag else []), *argv)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    where = (argv, env, result.exit_code, result.stdout[-500:], result.stderr[-500:])
    assert "Traceback" not in result.stderr, where
    assert result.exit_code in EXIT_CODES, where
    if json_flag:
        document = json.loads(result.stdout)  # exactly one document
        VALIDATOR.validate(document)
        if isinstance(document, dict) and document.get("ok") is False and "error" in document:
            assert document["exit_code"] == result.exit_code, where
            assert document["error"]["kind"] != "unexpected", where  # a bug, not hostile input handled
    elif result.exit_code not in (0, 1):
        assert sum(line.startswith("error: ") for line in result.stderr.splitlines()) == 1, where
    if result.exit_code == 2:
        assert state_hash(root, logs) == before, ("exit 2 changed the state root", where)


@st.composite
def invocations(draw, tmp: Path):
    template = draw(st.sampled_from(COMMANDS))
    argv = [draw(VALUE) if part == "V" else part.format(tmp=tmp) for part in template]
    names = draw(st.lists(st.sampled_from(ENVIRONMENT), max_size=2, unique=True))
    env = {}
    for name in names:
        value = draw(VALUE.filter(lambda v: "\x00" not in v))
        if name == "AGENCYSTACK_ROOT":  # somewhere of the test's own: a file, or a directory named with the value
            value = str(tmp / "roots" / "".join(c if c.isalnum() else "_" for c in value)[:40]) if value else \
                str(tmp / "a-file")
        env[name] = value
    return argv, env, draw(st.booleans())


@pytest.fixture
def hostile(with_plugins, agencystack_env, agencystack_run, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("AGENCYSTACK_LOCK_TIMEOUT", "1")
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "roots").mkdir()
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0  # something installed to protect
    return agencystack_run, agencystack_env, tmp_path


def _property(hostile, examples: int) -> None:
    run, root, tmp = hostile

    @settings(max_examples=examples, deadline=5000, derandomize=examples < 100, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(invocations(tmp))
    def one(case):
        argv, env, json_flag = case
        check(run, root, tmp, argv, env, json_flag)

    one()


def test_hostile_input_is_refused_cleanly(hostile):
    _property(hostile, 40)


@pytest.mark.hostile_long
def test_hostile_input_is_refused_cleanly_long(hostile, request):
    if "hostile_long" not in (request.config.option.markexpr or ""):
        pytest.skip("the long profile runs with -m hostile_long")
    _property(hostile, 1500)


def test_every_command_is_in_the_hostile_set():
    from agencystack.cli import COMMANDS as TOP

    assert {template[0] for template in COMMANDS} >= set(TOP)
