"""Helpers for real-engine tests (plain functions, no fixtures: import freely; see tests/engine/fixtures.py)."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from typing import Callable, TypeVar

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
