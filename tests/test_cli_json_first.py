"""``--json`` is accepted before the sub-command too (as ``-v`` is after it), as git and docker take global options."""

from __future__ import annotations

import json


def test_json_before_the_sub_command_is_the_sub_commands_json(agencystack_run):
    before = agencystack_run("--json", "components", "list")
    after = agencystack_run("components", "list", "--json")
    assert before.exit_code == after.exit_code == 0, before.output
    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_json_before_a_command_of_a_group_and_before_bad_input(agencystack_run):
    listed = agencystack_run("--json", "backup", "list")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    bad = agencystack_run("--json", "status", "posthog", "-c", "Not Valid")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: invalid client id")


def test_json_before_logs_answers_its_failure_as_json(agencystack_run):
    """Every command has a --json form now (issue 27): ``--json logs`` of a component not installed is exit 2 with
    the failure document on stdout (it was "has no --json output")."""
    result = agencystack_run("--json", "logs", "posthog")
    assert result.exit_code == 2
    assert result.stderr == "error: posthog for client default is not installed (see 'agencystack status --all')\n"
    assert json.loads(result.stdout)["error"]["kind"] == "usage"
