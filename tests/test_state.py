"""Per-client state: atomic writes, the lifecycle lock and who holds it, running without root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from agencystack.state import ComponentDir, atomic_write


def test_atomic_write_replaces_whole_files_with_mode(tmp_path):
    path = tmp_path / "f"
    atomic_write(path, "one")
    atomic_write(path, b"two", mode=0o640)
    assert path.read_text() == "two" and oct(path.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temp files left


def test_env_file_keeps_other_lines_and_only_changes_what_changed(tmp_path):
    cdir = ComponentDir(tmp_path, "acme", "hello")
    assert cdir.save_env({"HELLO_TOKEN": "abc$def"})
    cdir.env_file.write_text(cdir.env_file.read_text() + "# my note\nHELLO_OTHER=1\n")
    assert not cdir.save_env({"HELLO_TOKEN": "abc$def"})
    assert cdir.save_env({"HELLO_GREETING": "it's"})
    text = cdir.env_file.read_text()
    assert "# my note" in text and "HELLO_OTHER=1" in text
    assert cdir.read_env() == {"HELLO_TOKEN": "abc$def", "HELLO_OTHER": "1", "HELLO_GREETING": "it's"}


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from agencystack.state import StateRoot
    with StateRoot(Path(sys.argv[1])).lifecycle_lock("acme", "hello", "install", 5):
        print("locked", flush=True)
        time.sleep(30)
""")


def test_second_lifecycle_call_waits_then_names_the_holder(with_plugins, agencystack_run, agencystack_env,
                                                          monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(agencystack_env)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("AGENCYSTACK_LOCK_TIMEOUT", "1")
        result = agencystack_run("install", "hello", "-c", "acme")
        assert result.exit_code == 4
        assert result.stderr.count("\n") == 1
        assert f"pid {holder.pid}" in result.stderr and "install" in result.stderr
        # other clients are not blocked
        assert agencystack_run("install", "hello", "-c", "other").exit_code == 0
    finally:
        holder.kill()
        holder.wait()
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0  # released by the dead holder


def test_status_does_not_take_the_lock(with_plugins, agencystack_run, agencystack_env, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(agencystack_env)], stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        monkeypatch.setenv("AGENCYSTACK_LOCK_TIMEOUT", "0")
        assert agencystack_run("status", "hello", "-c", "acme").exit_code == 0
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def unprivileged_python(tmp_path_factory):
    """The system interpreter plus a world-readable copy of agencystack and the fixture plugin (pip --target):
    the project's own Python may live under /root, which other users cannot enter."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root (to become user nobody), runuser and /usr/bin/python3")
    site = tmp_path_factory.mktemp("nonroot-site")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(site), repo, os.path.join(repo, "tests", "fixtures", "thirdparty")],
                   check=True, capture_output=True)
    for path in [site, *site.parents]:
        os.chmod(path, os.stat(path).st_mode | 0o005)
        if str(path) == "/tmp":
            break
    return site


def test_runs_without_root_when_dirs_point_elsewhere(unprivileged_python, tmp_path):
    home = tmp_path / "nobody"
    home.mkdir()
    shutil.chown(home, "nobody")
    os.chmod(tmp_path, 0o755)
    command = [shutil.which("runuser"), "-u", "nobody", "--", "/usr/bin/python3", "-c",
               "from agencystack.cli import run; run()", "install", "hello"]
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(unprivileged_python), "HOME": str(home)}
    env = {**base, "AGENCYSTACK_ROOT": str(home / "root"), "AGENCYSTACK_LOG_DIR": str(home / "log")}
    ok = subprocess.run(command, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (home / "root/clients/default/hello/.env").exists()
    assert (home / "log/components/hello.log").exists()
    denied = subprocess.run(command, env=base, capture_output=True, text=True)  # documented defaults: /opt, /var/log
    assert denied.returncode == 2, denied.stderr
    assert denied.stderr.count("\n") == 1 and "AGENCYSTACK_ROOT" in denied.stderr


def test_installed_means_state_and_no_successful_uninstall_since_the_last_install(tmp_path):
    from agencystack import StateRoot

    cdir = StateRoot(tmp_path).component("acme", "hello")
    assert not cdir.installed  # nothing there
    cdir.save_env({"HELLO_TOKEN": "abc"})
    assert cdir.installed  # an install that saved its settings and then failed still counts
    for action, outcome, installed in (("install", "failed", True), ("install", "ok", True), ("backup", "ok", True),
                                       ("uninstall", "failed", True), ("uninstall", "ok", False),
                                       ("backup", "ok", False), ("install", "failed", True),
                                       ("uninstall", "ok", False), ("restore", "ok", True)):
        cdir.record(action, outcome)
        assert cdir.installed is installed, (action, outcome)
    assert [c.component for c in StateRoot(tmp_path).installed()] == ["hello"]
    cdir.record("uninstall", "ok")
    assert list(StateRoot(tmp_path).installed()) == [] and len(list(StateRoot(tmp_path).components())) == 1


def test_the_state_root_names_every_path_under_the_root_and_the_log_dir(tmp_path):
    from agencystack import StateRoot

    root = StateRoot(tmp_path / "root", tmp_path / "log")
    cdir = root.component("acme", "hello")
    assert cdir.path == tmp_path / "root/clients/acme/hello"
    assert (cdir.env_file.name, cdir.compose_file.name, cdir.manifest_file.name) == (".env", "compose.yaml",
                                                                                    "manifest.json")
    assert cdir.backups == cdir.path / "backups" and root.backup_dirs("acme", "hello") == [cdir.backups]
    assert root.lock_files("acme", "hello") == [tmp_path / "root/locks/acme_hello.lock",
                                                tmp_path / "root/locks/acme_hello.holder"]
    assert root.cache("posthog-upstream") == tmp_path / "root/cache/posthog-upstream"
    assert root.component_log("hello") == tmp_path / "log/components/hello.log"
    # another root's copy of this component's directory names that root (check_owner's message)
    assert root.root_of("/srv/other/clients/acme/hello", "acme", "hello") == "/srv/other"


def test_an_uninstalled_component_is_not_installed_for_logs_and_backup(with_plugins, agencystack_run,
                                                                       agencystack_env):
    assert agencystack_run("install", "hello", "-c", "acme").exit_code == 0
    assert agencystack_run("uninstall", "hello", "-c", "acme").exit_code == 0
    logs = agencystack_run("logs", "hello", "-c", "acme")
    assert logs.exit_code == 2 and "hello for client acme is not installed" in logs.stderr
    backup = agencystack_run("backup", "hello", "-c", "acme")
    assert backup.exit_code == 2 and "hello is not installed for client acme" in backup.stderr
    assert (agencystack_env / "clients/acme/hello/.env").is_file()  # its settings stay for the next install
