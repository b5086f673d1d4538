"""The docker SDK, imported without its ssh:// transport until an ssh:// host needs it.

The SDK imports paramiko (and with it cryptography's SSH parts, bcrypt, PyNaCl) at import time when it is installed,
for ssh:// engines only; on this project's machines that is most of ``import docker`` (measured: 2.1 s of 2.9 s
under load). Every engine module imports the SDK through here first, so a command that talks to unix:// or tcp://
engines never pays for it; :func:`enable_ssh` gives the SDK its ssh transport when an ssh:// driver connects.
"""

from __future__ import annotations

import sys

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
