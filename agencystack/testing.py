"""A pytest plugin for component authors (loaded automatically through the ``pytest11`` entry point).

Fixtures:

* ``agencystack_env`` -- a private state root and log dir (``AGENCYSTACK_ROOT``/``AGENCYSTACK_LOG_DIR`` under
  ``tmp_path``), a fresh environment without stray ``DOMAIN``/``CLIENT_ID``; returns the root path (see
  :func:`use_root`).
* ``agencystack_run`` -- run the CLI in-process like the console script: ``agencystack_run("install", "hello")``
  returns a :class:`CliResult` (exit code, stdout, stderr).
* ``agencystack_plugins`` -- the loaded :class:`~agencystack.plugin_host.Plugins` (what ``components list`` sees).
* ``agencystack_context`` -- a factory of :class:`~agencystack.LifecycleContext`:
  ``agencystack_context("demo", client="t1")`` (action ``plan`` unless given; ``flags`` as ``--set`` would give
  them), for testing a stack, its settings or a hook without the CLI. Nothing is written.
* ``agencystack_dashboard_context`` -- a factory of :class:`~agencystack.DashboardContext`, what
  ``dashboard_entries`` receives: ``agencystack_dashboard_context("demo", client="t1")`` (see
  :func:`dashboard_context`), to test a tile without installing anything:
  ``agencystack_plugins.dashboard_entries(agencystack_dashboard_context("demo"))``.
* ``agencystack_engine`` -- a real engine for this test (skipped when none answers; a failure under ``CI=true``):
  sets ``DOCKER_HOST`` (yours, or the default socket), and a **host namespace of its own**
  (``AGENCYSTACK_HOST_NAMESPACE``): per-host components the test installs -- the edge -- live under
  ``host-<namespace>`` with their own project, network (``agencystack_edge-<namespace>``) and free loopback ports
  (``EDGE_HTTP_PORT``/``EDGE_HTTPS_PORT``), so a test never touches the edge that serves the engine's real tenants.
  At teardown everything the test installed in its root is uninstalled with its data, then its edge network
  removed. Returns a :class:`TestEngine` (``client``: a client id of the test's own, ``url(host, path)`` as the
  test's edge serves it, ``get(url)``, ``exec(component, service, *command, client=...)``).

Plain functions, for module-scoped fixtures and helpers that a fixture cannot serve: :func:`use_root` (what
``agencystack_env`` does, on any ``MonkeyPatch``; :func:`root_environment` for a process), :func:`run_cli`,
:func:`load_plugins` (what ``agencystack_plugins`` returns), :func:`open_context`, :func:`dashboard_context`,
:func:`compose_file` / :func:`compose_document` (what the core renders for a context), :func:`run_backup` /
:func:`run_restore` (in this process, with the context's plugins), :func:`engine_driver`, :func:`container_name`,
:func:`project_filter` and :func:`service_of` (a deployed project's containers, volumes and networks on the engine),
:func:`free_port`, :func:`assert_idempotent` (a second install changes nothing) and :func:`assert_backup_roundtrip`
(backup, destroy with --purge, restore, the data is back).

Images: the engine fixture pulls nothing itself. A test engine without a registry (CI, offline machines) sets the
image settings in the environment (``DEMO_WEB_IMAGE=...``, ``EDGE_IMAGE=...``): the environment layer of the
settings reaches every install the test makes. Nothing here runs at import time; the plugin costs nothing in test
sessions that do not use it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from agencystack.backup.operations import BackupResult
    from agencystack.context import LifecycleContext
    from agencystack.engine import Driver
    from agencystack.integrations import DashboardContext
    from agencystack.results import Outcome
    from agencystack.plugin_host import Plugins


@dataclass
class CliResult:
    """One in-process CLI run. It also unpacks as ``(exit_code, output)``: ``code, out = run_cli(...)``."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __iter__(self) -> Iterator[Any]:
        return iter((self.exit_code, self.output))

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str) -> CliResult:
    """The agencystack CLI, in-process, exactly as the console script runs it (in this process's environment)."""
    from agencystack.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def root_environment(root: Path) -> dict[str, str | None]:
    """The environment of a private state root ``root``: the log dir (``log``) and the plugin discovery cache
    (``cache``) beside it, and no stray ``DOMAIN``/``CLIENT_ID`` (``None``: unset). For a CLI run as a process."""
    env: dict[str, str | None] = {"AGENCYSTACK_ROOT": str(root), "AGENCYSTACK_LOG_DIR": str(root.parent / "log"),
                                  "XDG_CACHE_HOME": str(root.parent / "cache")}  # plugin discovery cache
    env.update(dict.fromkeys(("DOMAIN", "CLIENT_ID", "AGENCYSTACK_DOMAIN", "AGENCYSTACK_CLIENT_ID",
                              "AGENCYSTACK_HOST_NAMESPACE")))
    return env


def use_root(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point AgencyStack in this process at the private state root ``root`` (see :func:`root_environment`);
    returns ``root``."""
    for key, value in root_environment(root).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return root


def load_plugins() -> Plugins:
    """The plugins as ``components list`` loads them (what ``agencystack_plugins`` returns), for a fixture of wider
    scope, or to :meth:`~agencystack.plugin_host.Plugins.register` a test-only plugin beside them. A Nov-27
    ``dashboard_entries`` call with a context of a client is answered, warned."""
    from agencystack.dashboard_registry import contexts
    from agencystack.plugins import load

    return load(client_contexts=contexts)


def open_context(plugins: Plugins, component: str, action: str = "plan", *, client: str | None = None,
                 flags: dict[str, str] | None = None, domain: str | None = None, **options: Any) -> LifecycleContext:
    """A :class:`~agencystack.LifecycleContext` as the CLI builds one: the global settings of this process's
    environment and a redactor of its own; ``options`` go to :meth:`~agencystack.LifecycleContext.open` as they are
    (``engine``, ``progress``, ``redactor``)."""
    from agencystack.context import LifecycleContext
    from agencystack.logging import Redactor
    from agencystack.settings import GlobalSettings

    options.setdefault("redactor", Redactor())
    return LifecycleContext.open(plugins=plugins, global_settings=GlobalSettings.load(), component=component,
                                 action=action, client=client, flags=flags, domain=domain, **options)


def dashboard_context(plugins: Plugins, component: str, *, client: str | None = None,
                      flags: dict[str, str] | None = None, manifest: Mapping[str, Any] | None = None,
                      installed: Sequence[str] | None = None, url: str | None = None) -> DashboardContext:
    """A :class:`~agencystack.DashboardContext` as the core builds one for ``dashboard_entries`` after an action:
    the component's settings as this process's environment and ``flags`` give them (a copy), ``manifest`` (default
    empty) as a read-only mapping, ``installed`` (default: the component alone), this host's ``edge_origin``, and
    ``url``: given, else the manifest's ``url``, else the public URL of the settings' ``domain`` (when they have
    one) as the edge serves it. Nothing is written; no engine is asked."""
    import json
    from types import MappingProxyType

    from agencystack.dashboard_registry import edge_origin
    from agencystack.integrations import DashboardContext

    context = open_context(plugins, component, client=client, flags=flags)
    manifest = json.loads(json.dumps(dict(manifest or {})))
    domain = getattr(context.settings, "domain", None)
    if url is None:
        url = manifest.get("url") or (context.public_url(str(domain)) if domain else None)
    return DashboardContext(client=context.client, component=context.component,
                            settings=context.settings.model_copy(), manifest=MappingProxyType(manifest), url=url,
                            installed=tuple(installed if installed is not None else (component,)),
                            edge_origin=edge_origin(context.global_settings))


def compose_file(context: LifecycleContext) -> str:
    """The compose file the core renders for ``context``'s deployment (what ``agencystack render`` prints and
    install writes to ``compose.yaml``), for a test that reads what would run."""
    from agencystack.engine import compose

    return compose.render(context.deployment())


def compose_document(context: LifecycleContext) -> dict[str, Any]:
    """:func:`compose_file` as data (the parsed document)."""
    from agencystack.engine import compose

    return compose.document(context.deployment())


def run_backup(context: LifecycleContext, dest: Path | None = None) -> BackupResult:
    """Back up the installed component of ``context`` in this process, as ``agencystack backup`` does (into
    ``dest``, default its ``backups`` directory), with the context's plugins: a test-only one registered beside them
    takes part. The result names the ``archive`` (its path) and its ``parts`` (``name``, ``kind``, sizes)."""
    from agencystack.backup import operations

    return operations.backup(context, dest=dest)


def run_restore(context: LifecycleContext, archive: Path) -> Outcome:
    """Restore ``archive`` into ``context``'s component in this process, as ``agencystack restore --from`` does
    (the whole archive verified first), with the context's plugins."""
    from agencystack.backup import operations

    return operations.restore(context, Path(archive))


def container_name(project: str, service: str) -> str:
    """The engine's name of the container that runs ``service`` of the deployed ``project``
    (``context.project``): what ``docker exec`` or the docker SDK's ``containers.get`` take."""
    from agencystack.engine import labels

    return labels.container_name(project, service)


def project_filter(project: str) -> dict[str, list[str]]:
    """The engine's filter for everything the deployed ``project`` holds -- containers, volumes, networks (the
    docker SDK's ``filters=``; ``docker ps --filter label=...``)."""
    from agencystack.engine import labels

    return {"label": [f"{labels.PROJECT}={project}"]}


def service_of(container_labels: Mapping[str, str]) -> str:
    """The service that a container of a deployed project runs, from its labels."""
    from agencystack.engine import labels

    return container_labels[labels.SERVICE]


def engine_driver(address: str | None = None) -> Driver:
    """The driver of the engine at ``address`` (default: ``DOCKER_HOST``, else the local socket), as
    ``context.engine`` is one: to ask it directly, or to wrap it in a test."""
    from agencystack.engine import connect

    return connect(address or _docker_host())


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine: needs a reachable container engine (agencystack_engine)")


@pytest.fixture
def agencystack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_root(monkeypatch, tmp_path / "agency_stack")


@pytest.fixture
def agencystack_run(agencystack_env: Path) -> Callable[..., CliResult]:
    return run_cli


@pytest.fixture
def agencystack_plugins(agencystack_env: Path) -> Plugins:
    return load_plugins()


@pytest.fixture
def agencystack_context(agencystack_plugins):
    """``agencystack_context(component, action="plan", client=None, flags=None, domain=None, plugins=None)``."""

    def context(component: str, action: str = "plan", *, plugins: Plugins | None = None,
                **kwargs: Any) -> LifecycleContext:
        return open_context(plugins or agencystack_plugins, component, action, **kwargs)

    return context


@pytest.fixture
def agencystack_dashboard_context(agencystack_plugins):
    """``agencystack_dashboard_context(component, client=None, flags=None, manifest=None, installed=None,
    url=None, plugins=None)``: see :func:`dashboard_context`."""

    def context(component: str, *, plugins: Plugins | None = None, **kwargs: Any) -> DashboardContext:
        return dashboard_context(plugins or agencystack_plugins, component, **kwargs)

    return context


# -- the engine ----------------------------------------------------------------------------------------------------
@dataclass
class TestEngine:
    """The engine a test runs on, and the test's own host namespace on it."""

    __test__ = False  # not a test class, for pytest's collector

    docker_host: str
    namespace: str
    edge_http_port: int
    edge_https_port: int
    root: Path

    @property
    def client(self) -> str:
        """A client id of this test's own: engine projects are ``<client>_<component>``, so installing for it
        never meets a real tenant's project on a shared engine (a fixed id such as ``t1`` would, and be refused)."""
        return self.namespace

    @property
    def edge_network(self) -> str:
        return f"agencystack_edge-{self.namespace}"

    def url(self, host: str, path: str = "/") -> str:
        """``host`` + ``path`` as users reach it through the test's edge (scheme and published port)."""
        from agencystack.edge.routing import Edge, public_url

        return public_url(f"http://{host}{path}", Edge(network=self.edge_network, http_port=self.edge_http_port,
                                                       https_port=self.edge_https_port))

    def get(self, url: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``url`` through the test's edge (its host name as the Host header): (status, body)."""
        from agencystack.probes import edge_address, through_edge

        status, _, body = through_edge(url, via=edge_address(self.docker_host), timeout=timeout)
        return status, body.decode(errors="replace")

    def exec(self, component: str, service: str, *command: str, client: str | None = None) -> str:
        """Run ``command`` in the running container of ``service``; its output (AssertionError unless exit 0)."""
        context = open_context(load_plugins(), component, "status", client=client)
        out, err = io.BytesIO(), io.BytesIO()
        code = context.engine.exec(context.deployment(), service, list(command), stdout=out, stderr=err)
        assert code == 0, f"{' '.join(command)} in {service} exited {code}: {err.getvalue().decode(errors='replace')}"
        return out.getvalue().decode(errors="replace")


@pytest.fixture
def agencystack_engine(agencystack_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestEngine]:
    from agencystack.errors import AgencyStackError

    docker_host = _docker_host()
    driver = engine_driver(docker_host)
    try:
        driver.ping()
    except AgencyStackError as exc:
        if in_ci():
            pytest.fail(f"CI=true and no engine answers: {exc}", pytrace=False)
        pytest.skip(f"no container engine: {exc}")
    engine = TestEngine(docker_host=docker_host, namespace=f"t{secrets.token_hex(4)}", edge_http_port=free_port(),
                        edge_https_port=free_port(), root=agencystack_env)
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("AGENCYSTACK_HOST_NAMESPACE", engine.namespace)
    monkeypatch.setenv("EDGE_HTTP_PORT", str(engine.edge_http_port))
    monkeypatch.setenv("EDGE_HTTPS_PORT", str(engine.edge_https_port))
    monkeypatch.setenv("EDGE_BIND_ADDRESS", "127.0.0.1")
    yield engine
    _clean_up(engine, driver)


def _clean_up(engine: TestEngine, driver: Any) -> None:
    """Uninstall (with data) everything the test installed in its own root, per-host components last, then remove
    its edge network (which no uninstall removes: on a real host, tenants may still be attached to it)."""
    import warnings

    from agencystack.errors import AgencyStackError
    from agencystack.state import StateRoot

    installed = [(found.client, found.component) for found in StateRoot(engine.root).installed()]
    host_client = f"host-{engine.namespace}"
    for client, component in sorted(installed, key=lambda item: item[0] == host_client):
        client_args = [] if client == host_client else ["-c", client]
        result = run_cli("uninstall", component, *client_args, "--purge", "--yes", "--force")
        if result.exit_code != 0:
            warnings.warn(f"test clean-up: uninstall {component} {' '.join(client_args)}: {result.stderr.strip()}",
                          stacklevel=1)
    remove = getattr(getattr(driver, "client", None), "remove_network", None)
    if remove is not None:
        with contextlib.suppress(AgencyStackError):
            remove(engine.edge_network)


# -- assertions ----------------------------------------------------------------------------------------------------
def _containers(component: str, client: str) -> dict[str, str]:
    result = run_cli("status", component, "-c", client, "--json")
    return {s["name"]: s["container"] for s in result.json()[0]["services"] if s.get("container")}


def assert_idempotent(component: str, client: str, *install_args: str) -> None:
    """Install ``component`` for ``client`` (if it is not yet), then again: the second install changes nothing
    (says "no changes", same containers) and ``plan`` shows nothing to change."""
    first = run_cli("install", component, "-c", client, *install_args)
    assert first.exit_code == 0, first.output
    before = _containers(component, client)
    assert before, f"{component} for {client} runs no container after install"
    second = run_cli("install", component, "-c", client, *install_args)
    assert second.exit_code == 0, second.output
    assert "no changes" in second.stdout, f"a second install changed something: {second.stdout}"
    assert _containers(component, client) == before, "a second install replaced containers"
    plan = run_cli("plan", component, "-c", client, *install_args, "--json")
    assert plan.exit_code == 0, plan.output
    assert all(c["kind"] == "unchanged" for c in plan.json()["changes"]), plan.stdout


def assert_backup_roundtrip(component: str, client: str, *, write: Callable[[], Any], read: Callable[[], Any]) -> None:
    """``write()`` data into the installed component (returns what ``read()`` must give back), back it up,
    destroy it (uninstall --purge: containers, volumes, settings), restore the archive into the same client and
    check that ``read()`` gives back what was written."""
    expected = write()
    assert read() == expected, "read() does not see what write() wrote"
    backup = run_cli("backup", component, "-c", client, "--json")
    assert backup.exit_code == 0, backup.output
    archive = backup.json()["archive"]
    purged = run_cli("uninstall", component, "-c", client, "--purge", "--yes", "--force")
    assert purged.exit_code == 0, purged.output
    gone = run_cli("status", component, "-c", client, "--json")
    assert gone.json()[0]["state"] == "absent", gone.stdout
    restored = run_cli("restore", component, "-c", client, "--from", archive)
    assert restored.exit_code == 0, restored.output
    assert read() == expected, "the restored component does not hold the data written before the backup"
