"""The docker SDK, imported without its ssh:// transport until an ssh:// host needs it.

The SDK imports paramiko (and with it cryptography's SSH parts, bcrypt, PyNaCl) at import time when it is installed,
for ssh:// engines only; on this project's machines that is most of ``import docker`` (measured: 2.1 s of 2.9 s
under load). Every engine module imports the SDK through here first, so a command that talks to unix:// or tcp://
engines never pays for it; :func:`enable_ssh` gives the SDK its ssh transport when an ssh:// driver connects.
"""

from __future__ import annotations

import sys
from typing import Any

if "docker" not in sys.modules and "paramiko" not in sys.modules:
    sys.modules["paramiko"] = None  # type: ignore[assignment]  # the SDK's `import paramiko` fails: it skips ssh
    try:
        import docker  # noqa: F401
    finally:
        del sys.modules["paramiko"]
else:
    import docker  # noqa: F401


def enable_ssh() -> None:
    """Give the SDK its ssh:// transport (importing paramiko now), once."""
    import docker.api.client as api_client
    import docker.transport as transport

    if not hasattr(api_client, "SSHHTTPAdapter"):
        from docker.transport.sshconn import SSHHTTPAdapter

        api_client.SSHHTTPAdapter = SSHHTTPAdapter
        transport.SSHHTTPAdapter = SSHHTTPAdapter


class APIClient(docker.APIClient):
    """The SDK's low-level client, negotiating the API version as the docker CLI and compose do: from the
    ``API-Version`` header of ``/_ping`` (0.4 ms here), not from ``/version``, which asks containerd and runc for their
    versions first (6 ms, on every command). An engine whose ping has no such header (API < 1.25) is asked the
    SDK's way; an engine that cannot be reached fails with the SDK's own error."""

    def _retrieve_server_version(self) -> str:
        try:
            found = self._get(self._url("/_ping", versioned_api=False)).headers.get("Api-Version")
        except Exception as exc:  # the SDK's own words, which the engine room reads as "cannot reach the engine"
            raise docker.errors.DockerException(f"Error while fetching server API version: {exc}") from exc
        return found or super()._retrieve_server_version()

    def inspect_container_dated(self, container: str) -> tuple[dict[str, Any], float]:
        """The container's inspect, with the engine's clock at the answer (its ``Date`` header, whole seconds): what
        ``since`` and ``until`` of :meth:`next_event` are measured in (the engine's clock, not this host's; this
        host's when something between them dropped the header)."""
        response = self._get(self._url("/containers/{0}/json", container))
        found = self._result(response, json=True)
        return found, _engine_clock(response)

    def start_dated(self, container: str) -> float:
        """Start the container (the SDK's ``start``); the engine's clock at the answer, as
        :meth:`inspect_container_dated` gives it: a wait for its health subscribes from there, without an inspect."""
        response = self._post(self._url("/containers/{0}/start", container))
        self._raise_for_status(response)
        return _engine_clock(response)

    def next_event(self, filters: dict[str, Any], since: str, until: int, timeout: float) -> dict[str, Any] | None:
        """The first event matching ``filters`` from ``since`` (engine time: ``seconds[.nanoseconds]``), or None when
        the engine ends the stream at ``until`` (engine seconds) first, or says nothing for ``timeout`` seconds.
        The stream is closed once read, on every transport (the SDK's CancellableStream cannot close over ssh)."""
        import requests.exceptions
        from docker.utils import convert_filters

        params = {"since": since, "until": until, "filters": convert_filters(filters)}
        response = self._get(self._url("/events"), params=params, stream=True, timeout=timeout)
        try:
            self._raise_for_status(response)
            for event in self._stream_helper(response, decode=True):
                return event
            return None
        except requests.exceptions.ReadTimeout:
            return None
        finally:
            response.close()


def _engine_clock(response: Any) -> float:
    """The engine's clock at an answer: its ``Date`` header (whole seconds), this host's when something dropped it."""
    import time
    from email.utils import parsedate_to_datetime

    date = response.headers.get("Date")
    return parsedate_to_datetime(date).timestamp() if date else time.time()
