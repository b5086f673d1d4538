"""pytest plugin: fixtures for tests that run against a REAL Docker engine (nothing mocked).

Load it with ``pytest_plugins = ["tests.engine.fixtures"]`` in tests/conftest.py. Start the engine with
``eval "$(bash tests/engine/start-engine.sh)"``; build the images with ``python tests/images/build.py``
(the ``images`` fixture builds missing ones itself).

Fixtures
--------
``docker_client`` (session) -> docker.DockerClient
    Connected to $DOCKER_HOST, default unix:///run/agencystack-test/docker.sock. When no engine answers the
    test is SKIPPED with the reason — except under CI=true, where it FAILS. Every test marked
    ``@pytest.mark.engine`` gets the same check even if it does not use the fixture.
``images`` (session) -> dict[str, str]
    Logical name -> image ref: ``busybox``, ``postgres``, ``redis``, ``traefik`` (see tests/images/build.py).
``compose_bin`` (session) -> pathlib.Path
    The docker-compose v2 static binary (no engine needed to get it). Run it with ``engine_env()``.
``registry`` (session) -> Registry
    A real OCI registry (CNCF distribution, built by tests/images/build.py) on 127.0.0.1, which the engine uses
    over plain HTTP. ``registry.address`` ("127.0.0.1:PORT"), ``registry.push(client, local_ref, "repo:tag")``
    (a real push through the engine; the local copy of that name is removed again, so a later use pulls).
``compose_schema`` (session) -> dict
    The Compose Specification's JSON schema, as compose-go ships it (Go module proxy; no engine needed).
``engine_run_id`` (session) -> str
    Unique id of this pytest run; everything the ``engine`` fixture makes carries ``RUN_LABEL=<id>`` and is
    swept at session end.
``engine`` (function) -> EngineScope
    Per-test namespace on the engine, with ``DOCKER_HOST`` set to it for the test (the CLI, GlobalSettings and
    subprocesses started with os.environ use the test engine, wherever it is): unique names, labels, helpers;
    removes at teardown (also on failure)
    every container, network and volume it made, those whose name starts with its prefix, and compose
    projects named with ``engine.name(...)``. API: ``engine.name(suffix)``, ``engine.labels`` (put them on
    whatever you create by other means), ``engine.network(suffix)``, ``engine.volume(suffix)``,
    ``engine.run(image, command, name=suffix, **docker_sdk_kwargs)`` (detached),
    ``engine.run_once(image, command, **kw) -> (exit_code, output)``, ``engine.published_port(container,
    "80/tcp")``, ``engine.default_network``, ``engine.scope_id``, ``engine.cleanup()``.
    The engine runs with --bridge=none: a container needs a user-defined network for any networking and for
    published ports, so ``run``/``run_once`` put it on ``engine.default_network`` unless given ``network``.
    Publish on loopback with a random port: ``ports={"80/tcp": ("127.0.0.1", None)}``.

``driver`` (function) -> DockerDriver
    AgencyStack's engine driver on the test engine. ``deployed`` (function): ``deployed(deployment)`` registers a
    deployment the driver removes (purge) at teardown, whatever the test did.

Helpers (import them from ``tests.engine.helpers``, which is not a plugin): ``wait_until(predicate, timeout,
interval, message)``, ``engine_socket_path()``, ``engine_env()``, ``http_get(url, host=None, method="GET",
data=None) -> (status, headers, body)``, ``private_engine(...)``, the driver tests' ``deployment``/``svc``/
``by_service``, the label names ``RUN_LABEL``/``SCOPE_LABEL``.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.images import build as _build
from tests.engine.helpers import (  # noqa: F401 - re-exported for tests
    COMPOSE_PROJECT_LABEL,
    RUN_LABEL,
    SCOPE_LABEL,
    engine_env,
    engine_host,
    engine_socket_path,
    http_get,
    in_ci,
    wait_until,
)

# --------------------------------------------------------------------------------------------------------------
# engine reachability (one probe per session)

_STATUS: dict[str, Any] = {}


def _probe() -> tuple[Any, str | None]:
    if "result" not in _STATUS:
        client, reason = None, None
        try:
            import docker
        except ImportError as exc:  # pragma: no cover - docker is a dependency of the project
            reason = f"the docker SDK is not importable: {exc}"
        else:
            try:
                _STATUS["since"] = time.time()  # what the run leaves on the engine is what it made after this
                client = _build.make_client(timeout=300)
                client.ping()
            except Exception as exc:  # noqa: BLE001
                reason = (f"no Docker engine answers at {engine_host()} ({type(exc).__name__}: {exc}); "
                          f"start one with: eval \"$(make -s engine)\" (installs docker.io if missing)")
                client = None
        _STATUS["result"] = (client, reason)
    return _STATUS["result"]


def _require_engine() -> Any:
    client, reason = _probe()
    if client is None:
        if in_ci():
            pytest.fail(f"CI=true and the engine tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    return client


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engine: needs a reachable Docker engine (skips without one, fails under CI=true)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the containers this run made and left on the shared engine (a test touches only what it created, and
    removes it): another test's leftover changes what a fleet's status lists and where a new client is placed."""
    client, _ = _STATUS.get("result", (None, None))
    if client is None:
        return
    try:
        left = [c for c in client.api.containers(all=True) if c.get("Created", 0) >= int(_STATUS["since"])]
    except Exception as exc:  # noqa: BLE001 - a report, after the run
        terminalreporter.write_line(f"could not list the engine's containers after the run: {exc}")
        return
    if left:
        terminalreporter.section("containers this run left on the test engine")
        for c in sorted(left, key=lambda c: c.get("Created", 0)):
            terminalreporter.write_line(f"{','.join(n.lstrip('/') for n in c.get('Names', []))}  {c.get('Status')}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("engine") is not None:
        _require_engine()


# --------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    client = _require_engine()
    yield client


@pytest.fixture(scope="session")
def images(docker_client: Any) -> dict[str, str]:
    return _build.ensure_images(docker_client)


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    return _build.compose_binary()


@pytest.fixture(scope="session")
def compose_schema() -> dict:
    import json

    return json.loads(_build.compose_schema().read_text())


class Registry:
    def __init__(self, address: str):
        self.address = address

    def push(self, client: Any, source: str, name: str) -> str:
        """Push local image ``source`` as ``<address>/<name>``; return that reference."""
        repo, _, tag = f"{self.address}/{name}".rpartition(":")
        client.images.get(source).tag(repo, tag)
        try:
            for event in client.api.push(repo, tag=tag, stream=True, decode=True):
                if event.get("error"):
                    raise RuntimeError(f"push of {repo}:{tag} failed: {event['error']}")
        finally:
            client.images.remove(f"{repo}:{tag}")
        return f"{repo}:{tag}"


@pytest.fixture(scope="session")
def registry(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import subprocess
    import urllib.request

    import yaml

    from agencystack.testing import free_port

    binary = _build.registry_binary()
    port = free_port()
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "error"}, "http": {"addr": f"127.0.0.1:{port}"},
                                      "storage": {"filesystem": {"rootdirectory": str(root / "data")}}}))
    process = subprocess.Popen([str(binary), "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(root / "registry.log", "wb"))

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return process.poll() is not None  # ended: stop waiting, fail below

    try:
        wait_until(answers, 30, 0.2, "the test registry to answer")
        if process.poll() is not None:
            pytest.fail(f"the test registry exited: {(root / 'registry.log').read_text()[-500:]}", pytrace=False)
        yield Registry(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def engine_run_id() -> Iterator[str]:
    run_id = f"{os.getpid():x}{secrets.token_hex(2)}"
    yield run_id
    client, _ = _probe() if "result" in _STATUS else (None, None)
    if client is not None:
        _sweep(client, {"label": [f"{RUN_LABEL}={run_id}"]})


_counter = itertools.count(1)


class EngineScope:
    """What one test makes on the engine: unique names, common labels, helpers, and cleanup."""

    def __init__(self, client: Any, run_id: str, test_name: str):
        self.client = client
        self.run_id = run_id
        slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:20].strip("-") or "t"
        self.scope_id = f"{run_id}-{next(_counter)}"
        #: every name this scope hands out starts with this; docker and compose accept it
        self.prefix = f"ast-{self.scope_id}-{slug}-"
        #: put these on everything you create by other means (compose files, the product under test)
        self.labels = {RUN_LABEL: run_id, SCOPE_LABEL: self.scope_id}
        self._default_network: Any = None

    @property
    def default_network(self) -> Any:
        """The scope's own bridge network, made on first use. The engine runs with --bridge=none: a container
        without a user-defined network has no networking (and published ports do nothing)."""
        if self._default_network is None:
            self._default_network = self.network("default")
        return self._default_network

    def _networked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if "network" not in kwargs and "network_mode" not in kwargs:
            kwargs["network"] = self.default_network.name
        return self._labels(kwargs)

    def name(self, suffix: str) -> str:
        """A unique name (container, network, volume, compose project) inside this scope."""
        return f"{self.prefix}{suffix}"

    def _labels(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs["labels"] = {**self.labels, **(kwargs.get("labels") or {})}
        return kwargs

    def network(self, suffix: str = "net", **kwargs: Any) -> Any:
        return self.client.networks.create(self.name(suffix), driver="bridge", **self._labels(kwargs))

    def volume(self, suffix: str = "vol", **kwargs: Any) -> Any:
        return self.client.volumes.create(name=self.name(suffix), **self._labels(kwargs))

    def run(self, image: str, command: Any = None, *, name: str, **kwargs: Any) -> Any:
        """Start a detached container named engine.name(name), labelled, on `network` (default: the scope's
        default_network). Other keyword arguments are docker SDK `containers.run` ones."""
        kwargs.setdefault("detach", True)
        if not kwargs["detach"]:
            raise ValueError("EngineScope.run starts detached containers; use run_once to wait for one")
        return self.client.containers.run(image, command, name=self.name(name), **self._networked(kwargs))

    def run_once(self, image: str, command: Any = None, *, timeout: float = 120, **kwargs: Any
                 ) -> tuple[int, str]:
        """Run a container to completion; returns (exit code, stdout+stderr). Removed afterwards."""
        name = kwargs.pop("name", f"once-{secrets.token_hex(3)}")
        container = self.client.containers.create(image, command, name=self.name(name),
                                                  **self._networked(kwargs))
        try:
            container.start()
            result = container.wait(timeout=timeout)
            return int(result["StatusCode"]), container.logs().decode(errors="replace")
        finally:
            container.remove(force=True, v=True)

    def published_port(self, container: Any, port: str) -> int:
        """The host port that `port` (e.g. "80/tcp") of a running container is published on."""
        def lookup() -> int | None:
            container.reload()
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port) or []
            return int(bindings[0]["HostPort"]) if bindings and bindings[0].get("HostPort") else None
        return wait_until(lookup, 10, message=f"published port of {container.name} {port}")

    def cleanup(self) -> list[str]:
        """Remove what this scope made; returns what it removed (for debugging)."""
        return _sweep(self.client, {"label": [f"{SCOPE_LABEL}={self.scope_id}"]}, self.prefix)


def _sweep(client: Any, filters: dict[str, Any], prefix: str | None = None) -> list[str]:
    import docker

    removed: list[str] = []

    def matches(obj_name: str, labels: dict[str, str] | None) -> bool:
        if prefix is None:
            return False
        return obj_name.lstrip("/").startswith(prefix) or \
            (labels or {}).get(COMPOSE_PROJECT_LABEL, "").startswith(prefix)

    # list data only (the high-level list inspects each container and fails on one removed meanwhile)
    containers = {c["Id"]: c for c in client.api.containers(all=True, filters=filters)}
    if prefix is not None:
        for c in client.api.containers(all=True):
            if any(matches(n, c.get("Labels")) for n in c.get("Names") or []):
                containers[c["Id"]] = c
    for cid, c in containers.items():
        try:
            client.api.remove_container(cid, force=True, v=True)
            removed.append(f"container {(c.get('Names') or [cid])[0].lstrip('/')}")
        except docker.errors.NotFound:
            pass
    for kind, collection, options in (("network", client.networks, {}), ("volume", client.volumes, {"force": True})):
        found = {o.id: o for o in collection.list(filters=filters)}
        if prefix is not None:
            found.update({o.id: o for o in collection.list() if matches(o.name, o.attrs.get("Labels"))})
        for obj in found.values():
            try:
                obj.remove(**options)
                removed.append(f"{kind} {obj.name}")
            except docker.errors.NotFound:
                pass
    return removed


@pytest.fixture
def driver() -> Iterator[Any]:
    """AgencyStack's engine driver, on the test engine."""
    from agencystack.engine.docker import DockerDriver

    drv = DockerDriver(engine_host())
    yield drv
    drv.close()


@pytest.fixture
def deployed(driver: Any, engine: EngineScope) -> Iterator[Any]:
    made: list[Any] = []
    yield made.append
    for dep in made:
        try:
            driver.remove(dep, purge=True)
        except Exception:  # noqa: BLE001 - teardown: the engine fixture sweeps what is left
            pass


@pytest.fixture
def engine(docker_client: Any, engine_run_id: str, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineScope]:
    monkeypatch.setenv("DOCKER_HOST", engine_host())
    scope = EngineScope(docker_client, engine_run_id, request.node.name)
    try:
        yield scope
    finally:
        scope.cleanup()
