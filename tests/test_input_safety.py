"""Exit 2 means nothing was written, for every command: the whole state root and the log dir hash the same before
and after (paths, modes, contents), and the engine is never asked (DOCKER_HOST points at no engine: asking it would
be exit 3). Hostile values (control characters, image references, reserved client ids, contradicting domains) are
refused naming the setting, never showing the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agencystack.testing import run_cli
from tests.helpers import state_hash

CONTROL = {"newline": "sk\nWHOAMI_PORT=1", "carriage return": "a\rb", "escape": "\x1b[31mred", "NUL": "a\x00b",
           "DEL": "a\x7fb", "tab": "a\tb", "bell": "\x07"}

# (argv, what stderr names); every case runs against the populated root of the ``populated`` fixture
CASES = [
    *[(["install", "whoami", "-c", "acme", "--set", f"WHOAMI_MESSAGE={value}"], "WHOAMI_MESSAGE")
      for value in CONTROL.values()],
    (["plan", "whoami", "-c", "acme", "--set", "WHOAMI_MESSAGE=a\nb"], "WHOAMI_MESSAGE"),
    (["render", "whoami", "-c", "acme", "--set", "WHOAMI_MESSAGE=\x1b]0;title\x07"], "WHOAMI_MESSAGE"),
    (["settings", "show", "whoami", "-c", "acme", "--set", "WHOAMI_MESSAGE=a\rb"], "WHOAMI_MESSAGE"),
    (["install", "whoami", "-c", "acme", "--set", "WHOAMI_IMAGE=x;rm -rf /"], "WHOAMI_IMAGE"),
    (["render", "whoami", "-c", "acme", "--set", "WHOAMI_IMAGE=../../etc"], "WHOAMI_IMAGE"),
    (["plan", "notes", "-c", "acme", "--set", "NOTES_POSTGRES_IMAGE=Postgres:15"], "NOTES_POSTGRES_IMAGE"),
    (["install", "edge", "--set", "EDGE_IMAGE=traefik:v3 --entrypoints"], "EDGE_IMAGE"),
    (["install", "hello", "-c", "host"], "reserved"),
    (["install", "hello", "-c", "host-t1"], "reserved"),
    (["status", "hello", "-c", "host-x"], "reserved"),
    (["uninstall", "hello", "-c", "host-x"], "reserved"),
    (["backup", "list", "-c", "host-x"], "reserved"),
    (["install", "notes", "-c", "acme", "--domain", "a.example.com", "--set", "NOTES_DOMAIN=b.example.com"],
     "--domain a.example.com contradicts --set NOTES_DOMAIN=b.example.com"),
    (["plan", "notes", "-c", "acme", "--domain", "a.example.com", "--set", "domain=b.example.com"],
     "contradicts --set domain=b.example.com"),
    (["install", "notes", "-c", "acme", "--domain", "a\nb.com"], "invalid domain"),
    (["restart", "whoami", "-c", "acme", "--service", "ghost"], "unknown service(s) ghost"),
    (["logs", "whoami", "-c", "nobody"], "not installed"),
    (["backup", "hello", "-c", "acme", "--dest", "/proc/nope"], "/proc/nope"),
    (["backup", "hello", "-c", "acme", "--dest", "/etc/passwd/x"], "/etc/passwd/x"),
    (["backup", "hello", "-c", "nobody"], "not installed"),
    (["backup", "hello", "-c", "acme", "--keep-last", "0"], "--keep-last"),
    (["restore", "hello", "-c", "acme", "--from", "/nonexistent/archive.tar"], "does not exist"),
    (["uninstall", "hello", "-c", "acme", "--purge"], "--yes"),
    (["settings", "show", "whoami", "-c", "Acme"], "invalid client id"),
    (["hosts", "remove", "nosuchhost"], "nosuchhost"),
    (["move", "-c", "acme", "--to", "nosuchhost"], "nosuchhost"),
    (["sso", "users", "list", "-c", "host-x"], "reserved"),
    (["status", "--all", "--host", "nosuchhost"], "nosuchhost"),
    (["install", "demo-core", "-c", "acme", "--domain", "acme.example.com"], "--domain"),
    (["install", "whoami", "--clients", "/nonexistent/clients.yaml"], "does not exist"),
    (["backup", "verify", "/nonexistent/archive.agsb"], "does not exist"),
    (["restore", "hello", "-c", "acme", "--from", "/etc/hostname", "--key-file", "/nonexistent/key"], "key file"),
    (["logs", "whoami", "-c", "acme", "--tail=-5"], "--tail"),
    (["hosts", "add", "Bad Name", "--docker-host", "tcp://127.0.0.1:1"], "invalid host name"),
    (["dashboard", "serve", "-c", "host-x"], "reserved"),
    (["component", "new", "Bad_Name"], "Bad_Name"),
    (["settings", "show", "nope"], "unknown component"),
]


@pytest.fixture
def populated(with_plugins, agencystack_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A root with hello installed for acme and whoami's settings saved for acme (state, as a failed install
    leaves it), then DOCKER_HOST at no engine."""
    assert run_cli("install", "hello", "-c", "acme").exit_code == 0
    from agencystack.state import ComponentDir

    ComponentDir(agencystack_env, "acme", "whoami").save_env({"WHOAMI_PORT": "18099"})
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return agencystack_env


def _logs(root: Path) -> Path:
    return root.parent / "log"


@pytest.mark.parametrize(("argv", "names"), CASES, ids=[" ".join(a).replace("\n", "\\n") for a, _ in CASES])
def test_exit_2_writes_nothing_and_asks_no_engine(populated, argv, names):
    before = state_hash(populated, _logs(populated))
    result = run_cli(*argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and names in errors[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert state_hash(populated, _logs(populated)) == before, "an exit 2 changed the state root or the logs"


@pytest.mark.parametrize("kind", sorted(CONTROL))
def test_a_control_character_is_named_by_its_code_point_never_shown(populated, kind):
    value = CONTROL[kind]
    result = run_cli("install", "whoami", "-c", "acme", "--set", f"WHOAMI_MESSAGE={value}")
    assert result.exit_code == 2
    assert "WHOAMI_MESSAGE (given with --set) holds a control character (U+" in result.stderr
    assert value not in result.stderr and not any(c in result.stderr.rstrip("\n") for c in "\r\x1b\x00\x7f\x07")


def test_a_secret_with_a_control_character_is_refused_without_its_value(populated):
    result = run_cli("install", "whoami", "-c", "acme", "--set", "WHOAMI_API_KEY=topsecret\nX=1")
    assert result.exit_code == 2 and "WHOAMI_API_KEY" in result.stderr and "topsecret" not in result.stderr


def test_control_characters_are_refused_from_the_environment_and_the_client_env_file(populated, monkeypatch):
    from agencystack.state import ComponentDir

    monkeypatch.setenv("WHOAMI_MESSAGE", "two\nlines")
    before = state_hash(populated, _logs(populated))
    result = run_cli("plan", "whoami", "-c", "acme")
    assert result.exit_code == 2 and "WHOAMI_MESSAGE (in the environment) holds a control character" in result.stderr
    monkeypatch.delenv("WHOAMI_MESSAGE")
    ComponentDir(populated, "acme", "whoami").save_env({"WHOAMI_MESSAGE": "\x1b[2J"})
    before = state_hash(populated, _logs(populated))
    result = run_cli("plan", "whoami", "-c", "acme")
    assert result.exit_code == 2 and "WHOAMI_MESSAGE (in " in result.stderr and ".env) holds a control" in result.stderr
    assert state_hash(populated, _logs(populated)) == before


def test_control_characters_in_a_clients_file_are_refused(populated, tmp_path):
    clients = tmp_path / "clients.yaml"
    clients.write_text('clients:\n  - id: globex\n    settings:\n      WHOAMI_MESSAGE: "a\\u001b[31mb"\n')
    before = state_hash(populated, _logs(populated))
    result = run_cli("install", "whoami", "--clients", str(clients))
    assert result.exit_code == 2 and "WHOAMI_MESSAGE" in result.stderr and "control character" in result.stderr
    assert state_hash(populated, _logs(populated)) == before


def test_the_same_domain_given_twice_is_no_contradiction(populated):
    result = run_cli("render", "notes", "-c", "acme", "--domain", "a.example.com", "--set",
                     "NOTES_DOMAIN=A.Example.com")
    assert result.exit_code == 0, result.output
    assert "a.example.com" in result.stdout


def test_a_root_that_is_a_file_is_bad_input_before_the_engine(with_plugins, monkeypatch, tmp_path):
    root = tmp_path / "root-file"
    root.write_text("not a directory\n")
    monkeypatch.setenv("AGENCYSTACK_ROOT", str(root))
    monkeypatch.setenv("AGENCYSTACK_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # asking it would be exit 3
    for argv in (["status", "--all"], ["install", "hello"], ["status", "whoami"], ["backup", "list"]):
        result = run_cli(*argv)
        assert result.exit_code == 2, (argv, result.output)
        assert result.stderr.startswith(f"error: AGENCYSTACK_ROOT={root} is not a directory"), result.stderr
    assert root.read_text() == "not a directory\n" and not (tmp_path / "log").exists()


def test_unknown_plugin_names_are_a_warning_naming_them(with_plugins, agencystack_env, monkeypatch):
    monkeypatch.setenv("AGENCYSTACK_PLUGINS", "agencystack_hello_nope,hello,-nosuchplugin")
    result = run_cli("components", "list", "--json")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "AGENCYSTACK_PLUGINS" in warning[0]
    assert "agencystack_hello_nope" in warning[0] and "nosuchplugin" in warning[0]
    assert '"hello"' in result.stdout  # nothing else changes: the names that exist still load
    monkeypatch.setenv("AGENCYSTACK_PLUGINS", "hello")
    assert "warning" not in run_cli("components", "list").stderr


def test_a_literal_dollar_of_a_setting_is_escaped_in_the_rendered_environment(populated):
    title = "${WHOAMI_API_KEY} $(touch /tmp/x) $HOME"
    result = run_cli("render", "whoami", "-c", "acme", "--set", f"WHOAMI_MESSAGE={title}")
    assert result.exit_code == 0, result.output
    import yaml

    web = yaml.safe_load(result.stdout)["services"]["web"]
    assert web["environment"]["MESSAGE"] == "$${WHOAMI_API_KEY} $$(touch /tmp/x) $$HOME"
    assert web["environment"]["API_KEY"] == "${WHOAMI_API_KEY}"  # the component's own reference stays one


def test_a_literal_dollar_of_a_setting_resolves_to_itself(populated):
    """What the driver gives the container: the setting's characters; a reference still resolves."""
    from agencystack.plugins import load
    from agencystack.engine.diff import resolved_env
    from agencystack.testing import open_context

    title = "${WHOAMI_API_KEY} $(touch /tmp/x) $$ $"
    context = open_context(load(), "whoami", client="acme", flags={"WHOAMI_MESSAGE": title})
    env = resolved_env(context.deployment(), context.stack().service("web"))
    key = context.settings.api_key.get_secret_value()
    assert env["MESSAGE"] == title and key not in env["MESSAGE"]
    assert env["API_KEY"] == key
    assert context.settings.message == title  # what the component reads outside its stack hook: the value


def test_a_saved_value_with_dollar_signs_reads_back_as_saved(populated):
    """The client's .env keeps ``${X}`` as those characters: read back (settings show, the next install), it is
    never expanded to another setting's value."""
    from agencystack.state import ComponentDir

    title = "${WHOAMI_API_KEY} $(touch /tmp/x) 'quoted' $HOME"
    ComponentDir(populated, "acme", "whoami").save_env({"WHOAMI_MESSAGE": title, "WHOAMI_API_KEY": "k" * 32})
    shown = run_cli("settings", "show", "whoami", "-c", "acme", "--json")
    assert shown.exit_code == 0, shown.output
    assert title in shown.stdout.replace('\\"', '"') and "k" * 32 not in shown.stdout


def test_a_taken_domain_is_refused_before_anything_is_locked_logged_or_recorded(populated):
    """acme's notes claims its host (settings, manifest, rendered compose file, as an install writes them); globex,
    which has notes state already, asks for the same host: exit 2 before the engine is asked, and globex's manifest, dashboard and
    the logs are untouched."""
    from agencystack.engine import compose
    from agencystack.plugins import load
    from agencystack.state import ComponentDir
    from agencystack.testing import open_context

    claim = open_context(load(), "notes", client="acme", domain="notes.shared.example.com")
    claim.dir.ensure()
    claim.dir.compose_file.write_text(compose.render(claim.deployment()))
    claim.save_settings()
    claim.dir.record("install", "ok")
    ComponentDir(populated, "globex", "notes").save_env({"NOTES_TITLE": "Globex"})
    ComponentDir(populated, "globex", "notes").record("install", "ok")
    ComponentDir(populated, "host", "edge").record("install", "ok")  # what notes requires is there
    before = state_hash(populated, _logs(populated))
    result = run_cli("install", "notes", "-c", "globex", "--domain", "notes.shared.example.com")
    assert result.exit_code == 2, result.output
    assert "notes.shared.example.com" in result.stderr and "acme" in result.stderr
    assert state_hash(populated, _logs(populated)) == before


def test_a_restore_into_a_client_the_component_was_never_installed_for_names_the_archive(populated):
    """filed bind-mounts files its own install writes (as PostHog does): client a's archive restored into client b,
    where filed was never installed, is exit 5 naming the archive's client and component and the way that works;
    nothing is written for b and the engine is never asked."""
    from agencystack.plugins import load
    from agencystack.testing import open_context

    a = open_context(load(), "filed", client="a")  # as its install leaves it: settings, manifest, its files
    a.save_settings()
    a.dir.record("install", "ok")
    (a.dir.path / "files").mkdir()
    backup = run_cli("backup", "filed", "-c", "a", "--json")
    assert backup.exit_code == 0, backup.output
    import json

    archive = json.loads(backup.stdout)["archive"]
    result = run_cli("restore", "filed", "-c", "b", "--from", archive)
    assert result.exit_code == 5, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert "holds filed of client a" in message and "into client b" in message
    assert "nothing was changed" in message and "agencystack install filed -c b" in message, message
    assert not (populated / "clients" / "b").exists(), message
