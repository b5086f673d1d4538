"""Helpers the core's tests share: plain functions and context managers (fixtures live in tests/conftest.py and the
test bed's tests/engine/fixtures.py; real-engine plumbing in tests/engine/helpers.py).

What a component author needs as well -- the in-process CLI (``run_cli``), a context as the CLI builds one
(``open_context``), a private state root (``use_root``), ``free_port`` -- is public, in :mod:`agencystack.testing`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agencystack.edge import routing
from agencystack.probes import through_edge
from agencystack.testing import free_port, root_environment, run_cli, use_root
from tests.engine.helpers import engine_env, engine_host


# -- what is on disk ---------------------------------------------------------------------------------------------
def state_hash(*roots: Path) -> str:
    """A digest of everything under ``roots`` (a state root, its log dir): every path, its type and mode, each
    file's bytes and each link's target; a root that does not exist counts as absent. What an exit 2 (nothing
    written) leaves unchanged."""
    import hashlib
    import stat

    digest = hashlib.sha256()
    for root in roots:
        root = Path(root)
        digest.update(f"root {root}\0".encode())
        if not root.exists() and not root.is_symlink():
            digest.update(b"absent\0")
            continue
        for path in sorted([root, *root.rglob("*")]):
            info = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{stat.S_IFMT(info.st_mode)}\0{stat.S_IMODE(info.st_mode):o}\0"
                          .encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


# -- the CLI as its own process --------------------------------------------------------------------------------
def process_env(root: Path, *, pythonpath: Iterable[Path] = (), **extra: str) -> dict[str, str]:
    """The environment of CLI processes on the test engine with the private state root ``root`` (see
    agencystack.testing.root_environment), ``pythonpath`` first on PYTHONPATH, ``extra`` on top."""
    env = engine_env()
    for key, value in root_environment(root).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, pythonpath), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def cli_argv(*args: str) -> list[str]:
    """The console script's command line, run by this interpreter (so it sees the same installation)."""
    return [sys.executable, "-c", "from agencystack.cli import run; run()", *args]


def cli_process(*args: str, env: Mapping[str, str], expect: int | None = 0, timeout: float = 600,
                outputs: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a process with ``env``; its output is appended to ``outputs`` (e.g. for a secret scan), then
    its exit code is checked against ``expect`` (None: not checked)."""
    done = subprocess.run(cli_argv(*args), env=dict(env), text=True, capture_output=True, timeout=timeout)
    if outputs is not None:
        outputs.append(done.stdout + done.stderr)
    if expect is not None:
        assert done.returncode == expect, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def set_args(values: Mapping[str, Any]) -> list[str]:
    """``--set KEY=VALUE`` for each item."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


# -- the real engine, from module-scoped fixtures (a test's own: the ``engine`` fixture sets DOCKER_HOST) ----------
def use_test_engine(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """``use_root(monkeypatch, root)`` with ``DOCKER_HOST`` at the test engine: the CLI in this process on both."""
    monkeypatch.setenv("DOCKER_HOST", engine_host())
    return use_root(monkeypatch, root)



@dataclasses.dataclass(frozen=True)
class EdgeHost(routing.Edge):
    """The edge :func:`edge_host` installed: what the translation needs, and its Traefik container's name."""

    container: str = ""


@contextlib.contextmanager
def edge_host(tmp: Path, images: dict[str, str], run_id: str, namespace: str | None = None):
    """An AgencyStack root (``tmp/root``) on the test engine with the edge installed through the CLI on free
    loopback ports (an :class:`EdgeHost`); removed afterwards. For module-scoped fixtures: it sets the environment
    itself.

    The edge is per host: it lives in a host namespace of its own (``namespace``, a fresh one by default), so that
    another run's edge, or one a killed run left behind, is never this one's; ``namespace=""`` is the host's real
    edge (for a test whose point is that it stays untouched)."""
    http_port, https_port = free_port(), free_port()
    network = f"agencystack_edge-{run_id}-{secrets.token_hex(2)}"  # one per use: a failed cleanup cannot cascade
    with pytest.MonkeyPatch.context() as mp:
        use_test_engine(mp, tmp / "root")
        mp.setenv("AGENCYSTACK_HOST_NAMESPACE", f"e{secrets.token_hex(4)}" if namespace is None else namespace)
        sets = {"EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik", "EDGE_HTTP_PORT": http_port,
                "EDGE_HTTPS_PORT": https_port, "EDGE_BIND_ADDRESS": "127.0.0.1", "EDGE_NETWORK": network,
                "EDGE_ACME_EMAIL": "ops@agencystack.test"}
        code, out = run_cli("install", "edge", *set_args(sets))
        assert code == 0, out
        try:
            yield EdgeHost(network=network, http_port=http_port, https_port=https_port,
                           container=edge_container(os.environ["AGENCYSTACK_HOST_NAMESPACE"]))
        finally:
            code, out = run_cli("uninstall", "edge", "--purge", "--yes")
            assert code == 0, out
            remove_network(network)


def edge_container(namespace: str = "") -> str:
    """The Traefik container of the edge in host namespace ``namespace`` (``host_edge-traefik-1`` without one)."""
    from agencystack import names

    return f"{names.project(names.host_client(namespace), 'edge')}-traefik-1"


def remove_network(name: str) -> None:
    """Test cleanup of the shared network (no uninstall removes it, by design); a leftover is a warning only."""
    import docker

    try:
        docker.DockerClient(base_url=engine_host()).networks.get(name).remove()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        warnings.warn(f"could not remove test network {name}: {exc.explanation}", stacklevel=1)


def request(port: int, host: str, path: str, *, tls: bool = False) -> tuple[int, dict[str, str], str]:
    """GET ``path`` from the edge on loopback ``port`` as ``host`` (a login URL's ``host:port`` included, sent as
    given; with SNI for ``tls``): (status, headers, body). The core's own request through the edge
    (:func:`agencystack.probes.through_edge`), told which port the test's edge listens on."""
    status, headers, body = through_edge(f"{'https' if tls else 'http'}://{host}{path}", port=port, timeout=10)
    return status, dict(headers.items()), body.decode(errors="replace")


def served_by(port: int, host: str, path: str, **kw: Any) -> str | None:
    """Which echo backend answered (its ``X-Echo-Service``), or ``<status>`` when none did."""
    status, headers, _ = request(port, host, path, **kw)
    return headers.get("X-Echo-Service") if status == 200 else f"<{status}>"


def pip_install(site: Path, *distributions: Path) -> Path:
    """pip-install ``distributions`` into ``site`` (no dependencies, offline) as a user installs a plugin."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), *map(str, distributions)],
                   check=True, capture_output=True)
    return site


def on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``site`` on sys.path and PYTHONPATH for this test: in-process and subprocess runs see its plugins."""
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return site


# -- a real browser ------------------------------------------------------------------------------------------------
def artifacts() -> Path:
    """Where tests leave what a person looks at (screenshots): $AGENCYSTACK_TEST_ARTIFACTS, default
    /tmp/agencystack-test-artifacts."""
    folder = Path(os.environ.get("AGENCYSTACK_TEST_ARTIFACTS") or "/tmp/agencystack-test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(window: str = "1280,900") -> Any:
    """A headless Chromium (Debian's chromium + chromium-driver, through selenium) with a ``window`` of that size,
    which resolves ``*.localhost`` to loopback and keeps plain http:// URLs plain (no automatic upgrade to https:// on
    port 443, where another edge of this host may answer with its own certificate). Not installed: a skip, a failure
    under CI=true. The caller quits it."""
    import shutil

    chromium_binary, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium_binary and chromedriver):
        message = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                f"--window-size={window}", "--disable-features=HttpsUpgrades,HttpsFirstModeV2,HttpsFirstBalancedMode,"
                "HttpsFirstBalancedModeAutoEnable,HttpsFirstModeV2ForTypicallySecureUsers,HttpsFirstModeIncognito,"
                "HttpsFirstModeForAdvancedProtectionUsers,HttpsFirstModeV2ForEngagedSites",
                "--no-proxy-server", "--host-resolver-rules=MAP *.localhost 127.0.0.1"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"https_only_mode_enabled": False,
                                              "https_first_balanced_mode_enabled": False})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
