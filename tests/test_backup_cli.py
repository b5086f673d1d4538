"""The backup/restore commands' input handling, verify, list, and restore's refusals: no engine needed.

Archives are made with the format's own writer; restore is refused before it would touch anything (nothing is
created under the state root), so none of these tests needs an engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agencystack.backup.archive import ArchiveWriter
from agencystack.backup.crypto import EncryptingWriter, Key

KEY_TEXT = "0123456789abcdef0123456789abcdef-operator-key"


def make_archive(directory: Path, *, component="posthog", client="acme", version="0.1.0", key: Key | None = None,
                 name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".agsb.enc" if key else ".agsb"
    path = directory / (name or f"{component}_{client}_20261126T100000Z{suffix}")
    with open(path, "wb") as handle:
        sink = EncryptingWriter(handle, key) if key else handle
        writer = ArchiveWriter(sink, {"client": client, "component": component, "created": "2026-11-26T10:00:00Z",
                                      "component_version": version, "core_version": "0.1.0"})
        writer.add_bytes("postgres", b"CREATE TABLE t (x int);\n" * 1000, kind="postgres")
        writer.add_bytes("env", b"POSTHOG_SECRET=abc\n", kind="env")
        writer.finish()
        if key:
            sink.close()
    return path


def flip(path: Path, at: int) -> Path:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    damaged = path.with_name("damaged_" + path.name)
    damaged.write_bytes(bytes(data))
    return damaged


def one_error_line(result) -> str:
    """Apart from progress lines (indented), stderr holds exactly one line: the error."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("  ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "backup.key"
    path.write_text(KEY_TEXT + "\n")
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------------------------------------------------------
# input errors: one line, exit 2
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    ((), "name a component"),
    (("posthog", "--keep-last", "0"), "--keep-last must be at least 1"),
    (("posthog", "--keep-days", "-1"), "--keep-days must be more than 0"),
    (("posthog", "--keep-last", "x"), "--keep-last"),
    (("nosuch",), "unknown component 'nosuch'"),
    (("posthog", "-c", "Bad_Client"), "invalid client id"),
    (("posthog", "-c", "acme"), "not installed for client acme"),
    (("verify",), "Missing argument"),
    (("create",), "Missing argument"),
    (("list", "Bad_Name"), "invalid component name"),
])
def test_bad_input_is_one_line_and_exit_2(agencystack_run, args, needle):
    result = agencystack_run("backup", *args)
    assert result.exit_code == 2, result.output
    assert needle in one_error_line(result)


def test_a_short_key_file_is_refused_before_anything(agencystack_run, agencystack_env, tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abc")
    result = agencystack_run("backup", "posthog", "-c", "acme", "--encrypt-key-file", str(short))
    assert result.exit_code == 2 and "at least 32" in one_error_line(result)
    assert not (agencystack_env / "clients").exists()


def test_the_three_forms_are_in_the_help(agencystack_run):
    result = agencystack_run("backup", "--help")
    assert result.exit_code == 0
    for form in ("backup COMPONENT", "backup list", "backup verify ARCHIVE"):
        assert form in result.stdout


# ---------------------------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------------------------
def test_verify_a_good_archive(agencystack_run, tmp_path):
    path = make_archive(tmp_path)
    result = agencystack_run("backup", "verify", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and [p["name"] for p in report["parts"]] == ["postgres", "env"]
    assert report["component"] == "posthog" and report["client"] == "acme"
    human = agencystack_run("backup", "verify", str(path))
    assert human.exit_code == 0 and ": ok (" in human.stdout


def test_verify_rejects_damage_and_truncation_with_exit_5(agencystack_run, tmp_path):
    path = make_archive(tmp_path)
    size = path.stat().st_size
    for at in (20, size // 2, size - 30):
        result = agencystack_run("backup", "verify", str(flip(path, at)))
        assert result.exit_code == 5, (at, result.output)
        one_error_line(result)
    truncated = tmp_path / "truncated.agsb"
    truncated.write_bytes(path.read_bytes()[:size // 2])
    result = agencystack_run("backup", "verify", str(truncated))
    assert result.exit_code == 5 and "truncated" in one_error_line(result)
    missing = agencystack_run("backup", "verify", str(tmp_path / "missing.agsb"))
    assert missing.exit_code == 2 and "does not exist" in one_error_line(missing)  # bad input, not damage


def test_verify_encrypted_needs_the_right_key(agencystack_run, tmp_path, key_file):
    path = make_archive(tmp_path, key=Key(KEY_TEXT.encode()))
    ok = agencystack_run("backup", "verify", str(path), "--key-file", str(key_file))
    assert ok.exit_code == 0, ok.output and "encrypted" in ok.stdout
    no_key = agencystack_run("backup", "verify", str(path))
    assert no_key.exit_code == 2 and "--key-file" in one_error_line(no_key)
    wrong = tmp_path / "wrong.key"
    wrong.write_text("another-key-of-enough-length-0123456789")
    bad = agencystack_run("backup", "verify", str(path), "--key-file", str(wrong))
    assert bad.exit_code == 5 and "does not open" in one_error_line(bad)
    assert KEY_TEXT not in ok.output + no_key.output + bad.output
    damaged = agencystack_run("backup", "verify", str(flip(path, path.stat().st_size // 2)), "--key-file",
                              str(key_file))
    assert damaged.exit_code == 5 and "fails authentication" in one_error_line(damaged)


# ---------------------------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------------------------
def test_list_shows_archives_newest_first_with_their_state(agencystack_run, agencystack_env, tmp_path):
    default = agencystack_env / "clients" / "acme" / "posthog" / "backups"
    make_archive(default, name="posthog_acme_20261120T100000Z.agsb")
    make_archive(default, name="posthog_acme_20261126T100000Z.agsb")
    make_archive(default, key=Key(KEY_TEXT.encode()), name="posthog_acme_20261125T100000Z.agsb.enc")
    (default / "posthog_acme_20261124T100000Z.agsb").write_bytes(b"garbage")
    (default / "unrelated.txt").write_text("x")
    make_archive(agencystack_env / "clients" / "beta" / "posthog" / "backups", client="beta")
    result = agencystack_run("backup", "list", "posthog", "-c", "acme", "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [e["name"] for e in entries] == ["posthog_acme_20261126T100000Z.agsb",
                                            "posthog_acme_20261125T100000Z.agsb.enc",
                                            "posthog_acme_20261124T100000Z.agsb",
                                            "posthog_acme_20261120T100000Z.agsb"]
    assert [e["state"].split(":")[0] for e in entries] == ["ok", "encrypted", "damaged", "ok"]
    assert entries[0]["parts"][0]["name"] == "postgres"
    every = agencystack_run("backup", "list", "-c", "acme")
    assert every.exit_code == 0 and every.stdout.count("posthog_acme_") == 4
    elsewhere = agencystack_run("backup", "list", "--dest", str(default.parent.parent.parent / "beta" / "posthog" /
                                                               "backups"), "-c", "beta", "--json")
    assert [e["client"] for e in json.loads(elsewhere.stdout)] == ["beta"]


# ---------------------------------------------------------------------------------------------------------------
# restore: refused before any change
# ---------------------------------------------------------------------------------------------------------------
def _nothing_changed(root: Path) -> None:
    assert not (root / "clients").exists(), "restore created state before refusing"


def test_restore_refuses_another_components_archive(agencystack_run, agencystack_env, tmp_path):
    path = make_archive(tmp_path, component="keycloak")
    result = agencystack_run("restore", "posthog", "-c", "acme", "--from", str(path))
    assert result.exit_code == 5 and "holds component 'keycloak'" in one_error_line(result)
    assert "--force" in result.stderr
    _nothing_changed(agencystack_env)


def test_restore_refuses_a_different_major_version(agencystack_run, agencystack_env, tmp_path):
    path = make_archive(tmp_path, version="7.0.0")
    result = agencystack_run("restore", "posthog", "-c", "acme", "--from", str(path))
    assert result.exit_code == 5 and "major versions differ" in one_error_line(result)
    _nothing_changed(agencystack_env)


@pytest.mark.parametrize("where", ["part", "manifest", "truncated"])
def test_restore_rejects_a_damaged_archive_before_any_change(agencystack_run, agencystack_env, tmp_path, where):
    path = make_archive(tmp_path)
    size = path.stat().st_size
    if where == "truncated":
        bad = tmp_path / "cut.agsb"
        bad.write_bytes(path.read_bytes()[:-100])
    else:
        bad = flip(path, 40 if where == "part" else size - 80)
    result = agencystack_run("restore", "posthog", "-c", "acme", "--from", str(bad))
    assert result.exit_code == 5, result.output
    one_error_line(result)
    _nothing_changed(agencystack_env)


def test_restore_of_a_missing_archive_or_without_from(agencystack_run, agencystack_env, tmp_path):
    result = agencystack_run("restore", "posthog", "--from", str(tmp_path / "nope.agsb"))
    assert result.exit_code == 2 and "does not exist" in one_error_line(result)  # a mistyped path is bad input
    result = agencystack_run("restore", "posthog")
    assert result.exit_code == 2 and "--from" in one_error_line(result)
    _nothing_changed(agencystack_env)


@pytest.mark.parametrize("args", [
    ("backup", "verify", "{missing}"),
    ("backup", "verify", "{archive}", "--key-file", "{missing}"),
    ("backup", "posthog", "--encrypt-key-file", "{missing}"),
    ("restore", "posthog", "--from", "{missing}"),
    ("restore", "posthog", "--from", "{archive}", "--key-file", "{missing}"),
    ("restore", "posthog", "--from", "{dir}"),
])
def test_a_path_that_does_not_exist_is_bad_input_checked_before_the_engine(agencystack_run, agencystack_env,
                                                                           tmp_path, monkeypatch, args):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # asking it would be exit 3
    archive = make_archive(tmp_path / "a")
    paths = {"missing": tmp_path / "nope", "archive": archive, "dir": tmp_path}
    result = agencystack_run(*(a.format(**paths) for a in args))
    assert result.exit_code == 2, result.output
    assert str(tmp_path) in one_error_line(result)
    _nothing_changed(agencystack_env)


# ---------------------------------------------------------------------------------------------------------------
# which settings a clone takes
# ---------------------------------------------------------------------------------------------------------------
def test_a_clone_takes_secrets_but_not_the_domain_nor_the_database_password():
    from pydantic import SecretStr
    from pydantic_settings import SettingsConfigDict

    from agencystack.backup.parts import clone_settings
    from agencystack.settings import ComponentSettings
    from agencystack.stack import EnvFile, PostgresDump, Service, Stack

    class Demo(ComponentSettings):
        model_config = SettingsConfigDict(env_prefix="DEMO_", extra="forbid")
        domain: str = "x"
        admin_domain: str = "y"
        secret: SecretStr | None = None
        salt_keys: SecretStr | None = None
        db_password: SecretStr | None = None
        port: int = 8000

    stack = Stack(services=[Service(name="db", image="postgres")],
                  backups=[PostgresDump(name="pg", service="db", password_key="DEMO_DB_PASSWORD"), EnvFile()])
    archived = {"DEMO_DOMAIN": "a.acme.com", "DEMO_ADMIN_DOMAIN": "admin.acme.com", "DEMO_SECRET": "s3cr3t",
                "DEMO_SALT_KEYS": "k1,k2", "DEMO_DB_PASSWORD": "pw", "DEMO_PORT": "8001"}
    carried, left = clone_settings(Demo, archived, stack)
    assert carried == {"DEMO_SECRET": "s3cr3t", "DEMO_SALT_KEYS": "k1,k2", "DEMO_PORT": "8001"}
    assert left == ["DEMO_ADMIN_DOMAIN", "DEMO_DB_PASSWORD", "DEMO_DOMAIN"]
