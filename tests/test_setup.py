"""The README's set-up, run as written in a clean clone with Debian's own Python first on PATH (issue 17).

Debian 12's /usr/bin/python3 is externally managed (PEP 668): pip refuses to install into it. These tests take the
commands from the README itself (its "Set up" block and its pipx block), so README and reality cannot drift apart,
and run them in a fresh ``git clone`` of this repository's HEAD with ``PATH=/usr/sbin:/usr/bin:/sbin:/bin``:
``make install`` must make and use the project's .venv and leave ``agencystack`` where the README says.

Only three things differ from a real server: the clone comes from this repository instead of ``<repository URL>``;
``make install`` links into a private BINDIR instead of /usr/local/bin (this machine is shared; the link itself is
the same); and pip is configured (PIP_FIND_LINKS, PIP_NO_INDEX) to take every distribution from a wheelhouse that
``pip download`` fills from PyPI once per set of pyproject files (kept under $AGENCYSTACK_TEST_CACHE), so that the
three clean installs cost seconds, not three downloads. The README's apt-get line runs, as root, only when
something it names is missing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
NOBODY = 65534
#: what the installs need besides the projects' own requirements: the build backend of the editable installs
#: (hatchling, and editables, which hatchling asks for them) and pipx's shared libraries
TOOLS = ("hatchling", "editables", "pip", "setuptools", "wheel")
TIMEOUT = 600  # the one cold pip download of every dependency; installs from the wheelhouse take seconds

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/python3").exists() or shutil.which("git") is None or shutil.which("make") is None,
    reason="needs Debian's /usr/bin/python3, git and make (the README's fresh-server set-up)")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution the README's installs need (dependencies, test tools, hatchling for the editable builds,
    pip/setuptools/wheel for pipx's shared libraries), downloaded once with Debian's Python from PyPI."""
    projects = [REPO, *(REPO / "components" / name for name in ("posthog", "keycloak", "dashboard"))]
    key = hashlib.sha256(b"".join((p / "pyproject.toml").read_bytes() for p in projects)
                         + " ".join(TOOLS).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("AGENCYSTACK_TEST_CACHE", "/var/cache/agencystack-test"))
    where = cache / "wheelhouse" / key
    if where.is_dir():
        return where
    where.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{key}.partial-", dir=where.parent))
    venv = tmp_path_factory.mktemp("download-venv")
    try:
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        download = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--dest", str(partial), f"{REPO}[test]", *map(str, projects[1:]), *TOOLS],
            capture_output=True, text=True, timeout=TIMEOUT)
        assert download.returncode == 0, download.stderr[-3000:]
        for own in partial.glob("agencystack*"):  # our own projects come from the clone, never from here
            own.unlink()
        partial.chmod(0o755)  # the unprivileged run reads it too
        try:
            partial.rename(where)
        except OSError:  # another session made it first
            shutil.rmtree(partial)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return where


def readme_block(heading: str) -> list[str]:
    """The commands of the first indented block after ``heading`` (comments stripped)."""
    text = README.read_text()
    section = text[text.index(heading):]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(re.sub(r"\s+#.*$", "", line.strip()))
    return block


def apt_packages(command: str) -> list[str]:
    return command.split("install -y", 1)[1].split()


def installed(package: str) -> bool:
    query = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return query.stdout.strip() == "install ok installed"


def script_for(block: list[str], source: str) -> str:
    """The README block as one bash script, the clone pointed at ``source``."""
    lines = ["set -euo pipefail"]
    for command in block:
        if command.startswith("apt-get "):
            missing = [p for p in apt_packages(command) if not installed(p)]
            if not missing:
                lines.append(f": already installed: {' '.join(apt_packages(command))}")
                continue
            if os.geteuid() != 0:
                pytest.skip(f"the README's apt-get line needs root here (missing: {' '.join(missing)})")
        lines.append(command.replace("<repository URL>", source))
    return "\n".join(lines) + "\n"


def clean_env(home: Path, bindir: Path, wheels: Path, **extra: str) -> dict[str, str]:
    """A login-like environment: Debian's PATH (plus the BINDIR make install links into), no virtualenv of ours,
    pip reading from the wheelhouse."""
    keep = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "LANG", "LC_", "TERM", "http", "https",
                                                                  "no_proxy", "HTTP", "HTTPS", "NO_PROXY"))}
    return {**keep, "HOME": str(home), "PATH": f"{bindir}:{DEBIAN_PATH}", "BINDIR": str(bindir),
            "PIP_FIND_LINKS": str(wheels), "PIP_NO_INDEX": "1", **extra}


def run_script(script: str, cwd: Path, env: dict[str, str], user: int | None = None) -> subprocess.CompletedProcess:
    command = ["bash", "-c", script]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def assert_cli_works(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Usage: agencystack" in result.stdout and "install" in result.stdout
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"posthog", "keycloak", "edge"} <= listed, result.stdout


def test_readme_setup_as_root_in_a_clean_clone(tmp_path, wheelhouse):
    """Debian's python3, a fresh clone, the README's commands: `agencystack --help` and `components list` work."""
    if os.geteuid() != 0:
        pytest.skip("the root variant of the README's set-up runs as root")
    bindir = tmp_path / "bin"
    env = clean_env(Path.home(), bindir, wheelhouse)
    result = run_script(script_for(readme_block("## Set up"), str(REPO)), tmp_path, env)
    assert_cli_works(result)
    clone = tmp_path / "agencystack"
    assert (bindir / "agencystack").resolve() == (clone / ".venv" / "bin" / "agencystack").resolve()
    venv_python = subprocess.run([clone / ".venv/bin/python", "-c", "import sys; print(sys.base_prefix)"],
                                 capture_output=True, text=True, check=True)
    assert venv_python.stdout.strip() == "/usr"  # made from Debian's own Python, which pip never touched
    assert "externally-managed" not in result.stderr


def test_readme_setup_as_a_user_without_root(tmp_path, wheelhouse):
    """The sudo-user variant, run by an unprivileged user (python3-venv already there, so no sudo is needed): it
    may write only its HOME, and agencystack lands in ~/.local/bin, linked to the clone's .venv."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user (setpriv)")
    if not installed("python3-venv"):
        pytest.skip("python3-venv missing: the unprivileged run would need sudo")
    # pytest's tmp dirs are private to root: the user gets a directory of its own, and a bare copy of the repo
    # (git refuses to read a repository owned by someone else)
    base = Path(tempfile.mkdtemp(prefix="agencystack-setup-"))
    try:
        home = base / "home"
        home.mkdir()
        subprocess.run(["git", "clone", "-q", "--bare", str(REPO), str(base / "repo.git")], check=True)
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(base)], check=True)
        base.chmod(0o755)
        bindir = home / ".local" / "bin"  # make install's default for a user: nothing is passed
        env = clean_env(home, bindir, wheelhouse, USER="nobody")
        del env["BINDIR"]
        block = [c for c in readme_block("## Set up") if not c.startswith("apt-get ")]  # `sudo apt-get`: installed
        result = run_script(script_for(block, str(base / "repo.git")), home, env, user=NOBODY)
        assert_cli_works(result)
        link = bindir / "agencystack"
        assert link.is_symlink() and link.resolve() == (home / "agencystack/.venv/bin/agencystack").resolve()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_readme_pipx_way_in_a_clean_clone(tmp_path, wheelhouse):
    """`pipx install ./` plus `pipx inject` of both component distributions, as the README says."""
    if shutil.which("pipx", path=DEBIAN_PATH) is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pipx is not installed (.ci/run installs Debian's pipx)")
        pytest.skip("pipx is not installed (apt-get install -y pipx)")
    subprocess.run(["git", "clone", "-q", str(REPO), str(tmp_path / "agencystack")], check=True)
    pipx_bin = tmp_path / "pipx-bin"
    env = clean_env(Path.home(), pipx_bin, wheelhouse, PIPX_HOME=str(tmp_path / "pipx"),
                    PIPX_BIN_DIR=str(pipx_bin))
    block = readme_block("### With pipx instead")
    assert block[0] == "pipx install ./" and block[1].startswith("pipx inject agencystack ./components/posthog")
    result = run_script(script_for(block, "") + "agencystack --help\n", tmp_path / "agencystack", env)
    assert_cli_works(result)
    assert (pipx_bin / "agencystack").is_symlink()


def test_make_install_refuses_an_externally_managed_python_and_names_the_way_out():
    """`make install PYTHON=/usr/bin/python3` (Debian's, PEP 668) stops before pip with the fix, not pip's wall."""
    env = {**os.environ, "PATH": DEBIAN_PATH}
    env.pop("PYTHON", None)
    result = subprocess.run(["make", "-s", "install", "PYTHON=/usr/bin/python3"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "/usr/bin/python3 is externally managed (PEP 668)" in result.stderr
    assert "plain 'make install'" in result.stderr and "--break-system-packages" in result.stderr
    assert "Successfully installed" not in result.stdout + result.stderr


def test_apt_install_of_installed_packages_does_nothing_and_prints_nothing():
    result = subprocess.run(["bash", str(REPO / "scripts/apt-install.sh"), "bash", "coreutils"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_apt_install_without_root_or_sudo_names_the_command():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user (setpriv)")
    if shutil.which("sudo", path=DEBIAN_PATH):
        pytest.skip("sudo is installed: an unprivileged run would ask it for a password")
    script = (REPO / "scripts/apt-install.sh").read_text()  # on stdin: the user may not read the worktree
    result = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", "bash",
                             "-s", "agencystack-no-such-package"], input=script, capture_output=True, text=True,
                            env={"PATH": DEBIAN_PATH}, cwd="/", timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert "run as root: apt-get update && apt-get install -y agencystack-no-such-package" in result.stderr


@pytest.mark.engine
def test_make_engine_prints_only_the_line_to_eval(docker_client):
    """`eval "$(make -s engine)"`: docker.io is there (nothing to install), the engine answers, stdout is one line."""
    from tests.engine.helpers import engine_env, engine_host

    env = engine_env()
    result = subprocess.run(["make", "-s", "engine"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"export DOCKER_HOST={engine_host()}\n"
