"""The plugin author's path end to end, as the issue's "done when" says, on the real engine: in a directory outside
the repository, ``agencystack component new demo``; ``pip install -e demo`` (into a virtualenv that sees the
project, offline: no build isolation, no dependencies fetched); ``components list`` shows it; ``install demo -c t1``
works next to an installed PostHog test stack without disturbing it; the generated tests pass unchanged.

No registry is reachable here: the images are set in the environment (``DEMO_WEB_IMAGE``, ``DEMO_DB_IMAGE``,
``EDGE_IMAGE``), as the generated README tells an author with an offline test engine to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from components.posthog.tests.helpers import acme, domain, host  # noqa: F401 - fixtures: the PostHog test stack
from tests.engine.helpers import engine_host
from tests.helpers import request, served_by

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]  # a PostHog stack, then the author's path

AGENCYSTACK = ["-c", "import sys; from agencystack.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def author(tmp_path_factory, host, images):
    """A plugin author's directory (outside the repository) with a virtualenv that sees the installed project."""
    home = tmp_path_factory.mktemp("author")
    assert not str(home).startswith(str(Path(__file__).resolve().parents[1]))
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    (site / "agencystack-project.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {**os.environ, "AGENCYSTACK_ROOT": str(host.root), "DOCKER_HOST": engine_host(),
           "XDG_CACHE_HOME": str(home / "cache"), "DEMO_WEB_IMAGE": images["busybox"],
           "DEMO_DB_IMAGE": images["postgres"], "EDGE_IMAGE": images["traefik"], "EDGE_BINARY": "/traefik",
           "AGENCYSTACK_LOG_DIR": str(home / "log")}
    for name in ("PYTHONPATH", "AGENCYSTACK_PLUGINS", "DOMAIN", "CLIENT_ID"):  # the host namespace stays: edge_host's
        env.pop(name, None)
    python = str(venv / "bin/python")

    def run(*argv: str, cwd: Path = home, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if check:
            assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout}\n{done.stderr}"
        return done

    yield home, python, run
    run(python, *AGENCYSTACK, "uninstall", "demo", "-c", "t1", "--purge", "--yes", check=False)


def test_new_component_from_an_empty_folder_to_installed_next_to_posthog(author, host, acme, docker_client):
    home, python, run = author
    client, _ = acme
    posthog_before = host.containers(docker_client, client)

    created = run(python, *AGENCYSTACK, "component", "new", "demo")
    assert "pyproject.toml" in created.stdout and (home / "demo/tests/test_demo.py").is_file()
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", "demo")

    listed = run(python, *AGENCYSTACK, "components", "list").stdout
    demo_line = next(line for line in listed.splitlines() if line.startswith("demo "))
    assert "agencystack-demo" in demo_line and "0.1.0" in demo_line

    installed = run(python, *AGENCYSTACK, "install", "demo", "-c", "t1")
    assert "demo for t1:" in installed.stdout and "waiting for http://demo.t1.localhost" in installed.stderr
    status, _, body = request(host.edge.http_port, "demo.t1.localhost", "/")  # through PostHog's edge
    assert (status, body) == (200, "Demo\n")
    status = run(python, *AGENCYSTACK, "status", "demo", "-c", "t1")
    assert "running" in status.stdout

    # PostHog is undisturbed: the same containers, still healthy behind the same edge
    assert host.containers(docker_client, client) == posthog_before
    assert served_by(host.edge.http_port, domain(client), "/e") == f"{client}-capture"
    from agencystack import lifecycle

    assert lifecycle.status(host.context(client, "status")).state.value == "running"

    # the generated tests, unchanged, in the author's environment (their engine tests in their own namespace)
    tests = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=home / "demo", check=False)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout, tests.stdout
    assert host.containers(docker_client, client) == posthog_before


def test_a_title_with_a_quote_and_a_command_is_shown_literally_and_runs_nothing(tmp_path, monkeypatch, images,
                                                                               agencystack_engine):
    """The scaffold passes settings to containers as environment variables, never inside a command: a title with a
    quote and ``$(...)`` installs, is served exactly as typed, and runs nothing (in the container or on this
    host). The status and the dashboard document give the same URL."""
    from agencystack.testing import run_cli

    pwned = Path("/tmp/pwned")
    assert not pwned.exists(), "a /tmp/pwned from elsewhere would hide the answer: remove it"
    target, site = tmp_path / "quoted", tmp_path / "site"
    assert run_cli("component", "new", "quoted", "--dir", str(target)).exit_code == 0
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(target)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))
    for key, image in (("QUOTED_WEB_IMAGE", images["busybox"]), ("QUOTED_DB_IMAGE", images["postgres"]),
                       ("EDGE_IMAGE", images["traefik"]), ("EDGE_BINARY", "/traefik")):
        monkeypatch.setenv(key, image)
    client, title = agencystack_engine.client, "it's $(touch /tmp/pwned)"

    installed = run_cli("install", "quoted", "-c", client, "--set", f"QUOTED_TITLE={title}")
    assert installed.exit_code == 0, installed.output
    url = agencystack_engine.url(f"quoted.{client}.localhost")
    assert agencystack_engine.get(url) == (200, f"{title}\n")
    inside = agencystack_engine.exec("quoted", "web", "sh", "-c", "test -e /tmp/pwned && echo made || echo none",
                                     client=client)
    assert inside.strip() == "none" and not pwned.exists()

    [status] = run_cli("status", "quoted", "-c", client, "--json").json()
    document = json.loads((agencystack_engine.root / "clients" / client / "dashboard.json").read_text())
    [listed] = [c for c in document["components"] if c["name"] == "quoted"]
    assert status["url"] == listed["url"] == url
    assert [tile["title"] for tile in listed["entries"]] == [title] and listed["entries_error"] is None
