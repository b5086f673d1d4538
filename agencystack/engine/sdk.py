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
