"""The engine API handle: connection, error translation, container exits, network removal.

:class:`EngineClient` wraps the docker SDK's low-level API object, which ``docker.py`` (the driver) makes and hands
over on first use. Every room of the engine talks to the engine through it, so that:

- a lost or refused connection becomes one :class:`~agencystack.errors.EngineUnreachable` naming the address
  (:meth:`EngineClient.guard`);
- a network the engine will not release (Docker 20.10's stale endpoint count) is reported, not fatal.

Containers exit in parallel, as docker compose stops them on the same engine. They once queued on one lock here,
after an engine wedged in a CI run during parallel stops; bench/exits.py runs that pattern (parallel stops on one
network, and stops while other containers start on it) against Debian 12's docker.io 20.10.24 and saw no hang (the
figures are in its docstring). Docker 20.10's known lock-order deadlock (libnetwork's getSvcRecords against
processEndpointDelete, fixed in 20.10.27) needs a container joining a network while another leaves it: a lock in one
process cannot prevent that anyway (another client's install joins the shared edge network at any time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from agencystack.engine import sdk  # noqa: F401 - first: the docker SDK without its ssh transport
import docker.errors
import requests.exceptions
import urllib3.exceptions

from agencystack.errors import ComponentError, EngineUnreachable

T = TypeVar("T")

MAX_WORKERS = 16
RUNNING_STATES = ("running", "restarting", "paused")  # states a container is stopped from
#: why Docker 20.10 may refuse to remove an empty network (only an engine restart clears it)
STALE_ENDPOINTS = "the engine counts endpoints on it that no longer exist (a Docker 20.10 bug)"
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                      urllib3.exceptions.ProtocolError, ConnectionError)


# -- error translation ------------------------------------------------------------------------------------------
def failure_reason(exc: BaseException) -> str:
    """The innermost useful words of a connection failure ("No such file or directory", "Connection refused")."""
    seen: set[int] = set()
    stack = [exc]
    best = ""
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                stack.append(arg)
            elif isinstance(arg, str) and not best:
                best = arg
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return best or type(exc).__name__


def is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if any(cls.__module__.startswith("paramiko") for cls in type(exc).__mro__):  # ssh:// (paramiko, imported by
        return True  # the docker SDK only): refused key, unknown host key, lost session
    return isinstance(exc, docker.errors.DockerException) and not isinstance(exc, docker.errors.APIError) and (
        "Error while fetching server API version" in str(exc) or "Connection" in str(exc))


def is_conflict(exc: docker.errors.APIError) -> bool:
    return exc.status_code == 409 or "already in use" in str(exc) or "already exists" in str(exc)


def explanation(exc: docker.errors.APIError) -> str:
    """The engine's own words for a refused call."""
    text = exc.explanation if isinstance(exc.explanation, str) and exc.explanation else str(exc)
    return text.strip()


def parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls concurrently (bounded by MAX_WORKERS); results in order, the first exception raised."""
    if not calls:
        return []
    if len(calls) == 1:
        return [calls[0]()]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


class EngineClient:
    """The engine at ``address``; ``connect`` makes the SDK's API object, once, on first use."""

    def __init__(self, address: str, connect: Callable[[], Any]):
        self.address = address
        self._connect = connect
        self._api: Any = None
        self.fresh = False  # connected just now (the version negotiation was the ping)
        self._lock = threading.Lock()

    @property
    def api(self) -> Any:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    with self.guard():
                        self._api = self._connect()
                    self.fresh = True
        return self._api

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn a lost or refused connection into EngineUnreachable naming the address."""
        try:
            yield
        except EngineUnreachable:
            raise
        except Exception as exc:
            if is_connection_failure(exc):
                raise EngineUnreachable(
                    f"cannot reach the container engine at {self.address}: {failure_reason(exc)}") from None
            raise

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- container exits ---------------------------------------------------------------------------------------
    def stop(self, container: str, grace: int) -> bool:
        """Stop a container with its grace period; False if it is gone."""
        try:
            self.api.stop(container, timeout=grace)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if "in progress" not in str(exc):  # a removal already under way (a killed run's): it finishes it
                raise
        return True

    def restart(self, container: str, grace: int) -> None:
        self.api.restart(container, timeout=grace)

    def gone(self, container: str, timeout: float = 60, volumes: bool = False) -> None:
        """Remove a container (by id or name) and return once the engine no longer has it; ``volumes``: its
        anonymous volumes with it (a purge, as ``compose down -v``). A removal still in progress (e.g. requested by
        an apply that was killed) is waited for, so that its name is free."""
        try:
            self.api.remove_container(container, v=volumes, force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "in progress" not in str(exc):
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api.inspect_container(container)
            except docker.errors.NotFound:
                return
            time.sleep(0.1)
        raise ComponentError(f"container {container} is still being removed after {timeout:g}s")

    # -- networks ----------------------------------------------------------------------------------------------
    def network_attached(self, name: str) -> list[str]:
        """The names of the containers attached to network ``name`` (none when it does not exist)."""
        try:
            found = self.api.inspect_network(name)
        except docker.errors.NotFound:
            return []
        return sorted(c.get("Name") or cid for cid, c in (found.get("Containers") or {}).items())

    def remove_network(self, name: str) -> bool:
        """Remove a project network; False when only the engine's stale endpoint count keeps it."""
        try:
            self.api.remove_network(name)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc):
                raise ComponentError(f"cannot remove network {name}: {explanation(exc)}") from None
        # another project's container (e.g. the edge) joined our network: detach it, then remove
        for endpoint in (self.api.inspect_network(name).get("Containers") or {}):
            try:
                self.api.disconnect_container_from_network(endpoint, name, force=True)
            except docker.errors.NotFound:
                pass
        return self._remove_network_when_released(name)

    def _remove_network_when_released(self, name: str) -> bool:
        """Docker 20.10 may report 'active endpoints' for a moment after the last container left: retry briefly.
        If it still does with nothing attached, its endpoint count is stale (fixed only by an engine restart): False.
        """
        from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

        busy = retry_if_exception(lambda e: isinstance(e, docker.errors.APIError) and "active endpoints" in str(e))
        try:
            retry(retry=busy, stop=stop_after_delay(15), wait=wait_exponential(0.1, max=2),
                  reraise=True)(self.api.remove_network)(name)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            try:
                attached = self.api.inspect_network(name).get("Containers") or {}
            except docker.errors.NotFound:
                return True
            if attached or "active endpoints" not in str(exc):
                raise ComponentError(f"cannot remove network {name}: {explanation(exc)}") from None
            return False


class EngineRoom:
    """A part of the driver (convergence, streams) that works through one :class:`EngineClient`."""

    def __init__(self, client: EngineClient):
        self.client = client

    @property
    def api(self) -> Any:
        return self.client.api
