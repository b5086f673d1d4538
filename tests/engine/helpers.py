"""Helpers for real-engine tests (plain functions, no fixtures: import freely; see tests/engine/fixtures.py).

``free_port`` is public: :func:`agencystack.testing.free_port`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

from tests.images import build as _build

RUN_LABEL = "org.agencystack.test.run"
SCOPE_LABEL = "org.agencystack.test.scope"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def engine_host() -> str:
    return _build.docker_host()


def engine_socket_path() -> str | None:
    """Host path of the engine's unix socket (to mount into e.g. Traefik), or None for a TCP engine."""
    host = engine_host()
    return host[len("unix://"):] if host.startswith("unix://") else None


def engine_env(**extra: str) -> dict[str, str]:
    """os.environ with DOCKER_HOST pointing at the test engine (for docker-compose and other subprocesses)."""
    env = dict(os.environ)
    env["DOCKER_HOST"] = engine_host()
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.2,
               message: str = "condition") -> T:
    """Poll until predicate() returns a truthy value (returned); exceptions count as not yet. Fails on timeout."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polling: anything is "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {message}"
                        + (f" (last error: {last!r})" if last else ""), pytrace=False)
        time.sleep(interval)


def http_get(url: str, host: str | None = None, method: str = "GET", data: bytes | None = None,
             timeout: float = 5.0) -> tuple[int, dict[str, str], str]:
    """One HTTP request from the test process; returns (status, headers, body) for any status."""
    headers = {"Host": host} if host else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode(errors="replace")


class SocketProxy:
    """A unix-socket forwarder in front of the engine, at ``path``. Tests :meth:`cut` it to lose the engine in the
    middle of a call; the bench counts requests with ``observe``: called once per client connection, it returns
    the function that sees every chunk that client sends."""

    def __init__(self, path: str, target: str, observe: Callable[[], Callable[[bytes], None]] | None = None):
        import socket
        import threading

        self.path, self.target, self.observe = path, target, observe
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(128)
        self.conns: list[socket.socket] = []
        self.alive = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        import socket
        import threading

        while self.alive:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            seen = self.observe() if self.observe else None
            threading.Thread(target=self._pipe, args=(client, upstream, seen), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, seen: Callable[[bytes], None] | None) -> None:
        import socket

        try:
            while data := src.recv(65536):
                if seen:
                    seen(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Close the listening socket and every connection: the engine is gone for its clients."""
        import socket

        self.alive = False
        self.server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        for sock in self.conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass


# -- the driver's tests: deployments of busybox services -------------------------------------------------------
SECRET_SUFFIXES = ("PASSWORD", "SECRET", "TOKEN")  # which keys of a test deployment's env hold secrets


def deployment(project: str, stack: Any, env: dict[str, str] | None = None, directory: Path | None = None,
               client: str = "acme", component: str = "demo") -> Any:
    """A :class:`~agencystack.engine.Deployment` of ``stack`` (version 1.2.3; secrets: keys ending in
    :data:`SECRET_SUFFIXES`)."""
    from agencystack.engine import Deployment

    env = env or {}
    return Deployment(project=project, client=client, component=component, stack=stack, env=env,
                      directory=directory or Path("/tmp") / project, version="1.2.3",
                      secret_keys=frozenset(key for key in env if key.endswith(SECRET_SUFFIXES)))


def svc(name: str, image: str, command: str | None = "exec sleep 3600", **kw: Any) -> Any:
    """A long-running busybox service (init: PID 1 forwards SIGTERM, so stops are quick)."""
    from agencystack.stack import Service

    kw.setdefault("init", True)
    kw.setdefault("stop_grace_period", 2)
    return Service(name=name, image=image, command=["sh", "-c", command] if command else None, **kw)


def containers_of(client: Any, project: str) -> list[Any]:
    from agencystack.engine import labels

    return client.containers.list(all=True, filters={"label": f"{labels.PROJECT}={project}"})


def by_service(client: Any, project: str) -> dict[str, Any]:
    """The project's containers by service name (a list each)."""
    from agencystack.engine import labels

    out: dict[str, Any] = {}
    for c in containers_of(client, project):
        out.setdefault(c.labels[labels.SERVICE], []).append(c)
    return out


# -- engines of a test's own -----------------------------------------------------------------------------------
class PrivateEngine:
    """A dockerd started by tests/engine/start-engine.sh with a run root, data root and address pool of its own."""

    def __init__(self, name: str, data_root: Path, log: Path, pool: str):
        self.run_root = Path(f"/run/agencystack-test-{name}-{os.getpid()}")
        self.host = f"unix://{self.run_root}/docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": self.host, "AGENCYSTACK_TEST_DATA_ROOT": str(data_root),
                    "AGENCYSTACK_TEST_RUN_ROOT": str(self.run_root), "AGENCYSTACK_TEST_DOCKERD_LOG": str(log),
                    # its own address pool, far from the main engine's, so the two never hand out the same subnet
                    "AGENCYSTACK_TEST_DOCKERD_ARGS": f"--default-address-pool base={pool},size=24"}
        self.client: Any = None

    def start(self) -> None:
        script = Path(__file__).with_name("start-engine.sh")
        subprocess.run(["bash", str(script)], env=self.env, check=True, capture_output=True)

    def stop(self) -> None:
        pid_file = self.run_root / "pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


@contextlib.contextmanager
def private_engine(name: str, data_root: Path, log: Path, pool: str) -> Iterator[PrivateEngine]:
    """A :class:`PrivateEngine`, started, with the busybox image built into it; stopped and its run root removed
    afterwards. Needs root and dockerd: skips otherwise."""
    import docker

    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.skip("needs root and dockerd to run an engine of the test's own")
    engine = PrivateEngine(name, data_root, log, pool)
    try:
        engine.start()
        engine.client = docker.DockerClient(base_url=engine.host)
        recipe, binary = _build._busybox_recipe()
        _build._build_busybox(engine.client, recipe, binary)
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(engine.run_root, ignore_errors=True)
