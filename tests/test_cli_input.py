"""Bad input: exit code 2, one line on stderr, no traceback, nothing written. Engine unreachable: its own code."""

from __future__ import annotations

import subprocess

import pytest

BAD = [
    (["install", "hello", "--client-id", "../etc"], "invalid client id"),
    (["install", "hello", "--client-id", "a/b"], "invalid client id"),
    (["install", "hello", "--client-id", ".."], "invalid client id"),
    (["install", "hello", "--client-id", "Acme"], "invalid client id"),
    (["install", "hello", "--client-id", "ac me"], "invalid client id"),
    (["install", "hello", "--client-id", ""], "invalid client id"),
    (["install", "hello", "--client-id", "a" * 33], "invalid client id"),
    (["install", "posthog", "--domain", "http://x.com"], "invalid domain"),
    (["install", "posthog", "--domain", "bad_domain..com"], "invalid domain"),
    (["install", "posthog", "--set", "POSTHOG_PORT=0"], "POSTHOG_PORT"),
    (["install", "posthog", "--set", "POSTHOG_PORT=70000"], "POSTHOG_PORT"),
    (["install", "hello", "--set", "HELLO_PORT=eighty"], "HELLO_PORT"),
    (["install", "hello", "--set", "novalue"], "malformed --set"),
    (["install", "hello", "--set", "=x"], "malformed --set"),
    (["install", "hello", "--set", "HELLO_NOPE=1"], "unknown setting"),
    (["install", "nope"], "unknown component 'nope'"),
    (["install", "hello", "--domain", "x.com"], "has no domain setting"),
    (["install"], "Missing argument"),
    (["instal", "hello"], "No such command"),
    (["status"], "name a component"),
    # empty values mean "unset" only where the default is empty; no value is longer than the limit
    (["install", "hello", "--set", "HELLO_TOKEN="], "HELLO_TOKEN is empty"),
    (["install", "hello", "--set", "HELLO_GREETING="], "HELLO_GREETING is empty"),
    (["install", "hello", "--set", "HELLO_GREETING=" + "x" * 100_000], "the limit is 4096"),
    # logs and restart: checked before any lock, file or engine call
    (["logs", "hello", "-c", "acme"], "hello for client acme is not installed"),
    (["logs", "hello", "--since", "yesterday-ish"], "invalid --since"),
    (["logs", "hello", "--since=-10m"], "invalid --since"),
    (["logs", "hello", "--tail=-5"], "invalid --tail"),
    (["logs", "hello", "--tail", "99999999999999999999999"], "invalid --tail"),
    (["logs", "hello", "--service", "x y"], "invalid --service"),
    (["restart", "hello", "--service", "x y"], "invalid --service"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(with_plugins, agencystack_run, agencystack_env,
                                                         argv, message):
    result = agencystack_run(*argv)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not agencystack_env.exists(), "bad input must not write anything"
    assert not (agencystack_env.parent / "log").exists()


def test_bad_input_through_the_console_script(with_plugins, agencystack_env):
    run = subprocess.run(["agencystack", "install", "hello", "--client-id", "../x"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("error: invalid client id") and run.stderr.count("\n") == 1
    assert not agencystack_env.exists()


def test_engine_unreachable_has_its_own_exit_code_and_names_the_address(agencystack_run, monkeypatch, tmp_path):
    address = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    result = agencystack_run("install", "posthog")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith("  … ")]  # progress lines aside
    assert len(errors) == 1 and errors[0].startswith("error: ") and address in errors[0]


def test_invalid_global_setting_is_bad_input(agencystack_run, monkeypatch):
    monkeypatch.setenv("DOMAIN", "not a domain")
    result = agencystack_run("plan", "posthog")
    assert result.exit_code == 2 and "DOMAIN" in result.stderr.upper()


def test_version_and_help(agencystack_run):
    assert agencystack_run("--version").stdout.startswith("agencystack ")
    result = agencystack_run("--help")
    assert result.exit_code == 0
    for command in ("install", "status", "logs", "restart", "uninstall", "plan", "doctor", "components", "backup"):
        assert command in result.stdout


def test_shell_completion_is_offered(agencystack_run):
    assert "--install-completion" in agencystack_run("--help").stdout
    # as a user asks for it: from an interactive bash (typer detects the shell from the parent process; the
    # trailing `true` keeps bash from exec-ing the command, so bash stays its parent even when run under make's sh)
    run = subprocess.run(["bash", "-c", "agencystack --show-completion; true"], capture_output=True, text=True,
                         env={"PATH": subprocess.os.environ["PATH"], "SHELL": "/bin/bash", "HOME": "/tmp"})
    assert run.returncode == 0 and "complete" in run.stdout


def test_typer_test_runner_drives_the_same_app(with_plugins, agencystack_env):
    from typer.testing import CliRunner

    from agencystack.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["components", "list", "--json"])
    assert listed.exit_code == 0 and '"hello"' in listed.stdout
    installed = runner.invoke(app, ["install", "hello", "--client-id", "runner"])
    assert installed.exit_code == 0, installed.output
    assert (agencystack_env / "clients" / "runner" / "hello" / ".env").exists()


def test_logs_input_is_checked_before_the_engine_is_asked(with_plugins, agencystack_run, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # asking it would be exit 3
    for argv in (["--since", "yesterday-ish"], ["--since=-10m"], ["--tail=-5"], ["--tail", "99999999999999999999999"]):
        result = agencystack_run("logs", "posthog", *argv)
        assert result.exit_code == 2, (argv, result.output)


def test_logs_of_an_unknown_service_is_bad_input(with_plugins, agencystack_run, monkeypatch, tmp_path):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # the stack answers: no engine needed
    result = agencystack_run("logs", "hello", "-c", "acme", "--service", "nope")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "unknown service(s) nope" in result.stderr


def test_verbose_is_accepted_after_the_sub_command_too(with_plugins, agencystack_run):
    for argv in (("-v", "install", "hello", "-c", "acme"), ("install", "hello", "-c", "acme", "-v"),
                 ("install", "hello", "--verbose", "-c", "acme")):
        result = agencystack_run(*argv, "--set", "HELLO_GREETING=fail")  # a plugin bug: -v shows the traceback
        assert result.exit_code == 1, (argv, result.output)
        assert "Traceback" in result.stderr and "No such option" not in result.stderr, argv
    quiet = agencystack_run("install", "hello", "-c", "acme", "--set", "HELLO_GREETING=fail")
    assert "Traceback" not in quiet.stderr and "run with -v" in quiet.stderr
    assert agencystack_run("install", "hello", "-c", "acme", "--set", "-v").exit_code == 2  # a value stays a value


def test_help_lists_every_command_as_typer_would():
    """The CLI builds only the sub-command it runs; its --help still lists every command with Typer's short help."""
    import typer

    from agencystack.cli import app, command

    def help_text(cmd):
        return cmd.get_help(typer.Context(cmd, info_name="agencystack"))

    assert help_text(command()) == help_text(typer.main.get_command(app))
