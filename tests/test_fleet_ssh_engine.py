"""A host reached over SSH, for real: Debian's OpenSSH server (``openssh-server``'s /usr/sbin/sshd) on loopback
with key authentication only, in front of a dockerd of the test's own. AgencyStack reaches it as
``ssh://root@127.0.0.1:PORT`` with the operator's own keys and known_hosts (``HOME`` is the test's: its ``~/.ssh`` holds a key made here and the
server's host key), exactly as the docker CLI does: ``docker system dial-stdio`` on the server. Nothing of the key is
copied into AgencyStack's files. The sshd and the engine are stopped by the test that started them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from agencystack.testing import free_port
from tests.engine.helpers import private_engine, wait_until

pytestmark = pytest.mark.engine

SSHD = "/usr/sbin/sshd"


def _ssh_server(work: Path, docker_host: str, home: Path) -> tuple[subprocess.Popen, int]:
    """sshd on 127.0.0.1 (key auth only; sessions get DOCKER_HOST of the test's engine); the client side in ``home``."""
    for tool in (SSHD, "ssh-keygen"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not found: apt-get install -y openssh-server openssh-client")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here (privilege separation, its own host key)")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory (Debian's path)
    def keygen(path: Path) -> None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                       capture_output=True)

    server = work / "server"
    server.mkdir(mode=0o700)
    keygen(server / "host_key")
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    keygen(ssh_dir / "id_ed25519")
    (server / "authorized_keys").write_text((ssh_dir / "id_ed25519.pub").read_text())
    (server / "authorized_keys").chmod(0o600)
    port = free_port()
    host_pub = (server / "host_key.pub").read_text().split()[:2]
    (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_pub)}\n")
    config = server / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {server / 'host_key'}", f"PidFile {server / 'sshd.pid'}",
        f"AuthorizedKeysFile {server / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        f"SetEnv DOCKER_HOST={docker_host}",
        # the test's files live under /tmp (world-writable): StrictModes would refuse the authorized_keys there
        "StrictModes no", "MaxSessions 64", "MaxStartups 64", "LogLevel VERBOSE",
    ]) + "\n")
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True)  # the config is valid
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(server / "sshd.log", "wb"))
    import socket

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 20, 0.1, "sshd listening")
    return process, port


@pytest.fixture
def ssh_host(tmp_path, docker_client, monkeypatch):
    """(ssh:// address, engine) of a dockerd reached only through a real sshd; both stopped afterwards."""
    home = tmp_path / "home"
    with private_engine("ssh", tmp_path / "engine", tmp_path / "dockerd.log", "10.237.0.0/16") as engine:
        process, port = _ssh_server(tmp_path, engine.host, home)
        try:
            monkeypatch.setenv("HOME", str(home))  # the operator's ~/.ssh: key, known_hosts
            monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
            yield f"ssh://root@127.0.0.1:{port}", engine
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_a_client_on_a_host_reached_over_ssh(ssh_host, with_plugins, agencystack_run, agencystack_env, images,
                                             engine):
    address, target = ssh_host
    client = f"s{secrets.token_hex(3)}"
    added = agencystack_run("hosts", "add", "h3", "--docker-host", address, "--json")
    assert added.exit_code == 0, added.output
    assert added.json()["reachable"] is True and added.json()["engine_version"], added.output
    stored = (agencystack_env / "hosts.json").read_text()
    assert address in stored and "PRIVATE KEY" not in stored and "id_ed25519" not in stored
    try:
        installed = agencystack_run("install", "whoami", "-c", client, "--host", "h3", "--set",
                                    f"WHOAMI_IMAGE={images['busybox']}", "--set", f"WHOAMI_PORT={free_port()}")
        assert installed.exit_code == 0, installed.output
        on_target = target.client.api.containers(filters={"label": f"io.agencystack.client={client}"})
        assert sorted(c["Labels"]["com.docker.compose.service"] for c in on_target) == ["web", "worker"]
        every = agencystack_run("status", "--all", "--json")
        assert every.exit_code == 0, every.output
        rows = {(r["host"], r["client"]): r["state"] for r in every.json()}
        assert rows[("h3", client)] == "running"
        logs = agencystack_run("logs", "whoami", "-c", client, "--service", "worker", "--tail", "3")
        assert logs.exit_code == 0 and "tick" in logs.stdout
    finally:
        gone = agencystack_run("uninstall", "whoami", "-c", client, "--purge", "--yes")
        assert gone.exit_code == 0, gone.output
    assert target.client.api.containers(all=True, filters={"label": f"io.agencystack.client={client}"}) == []

    # a server whose host key is not the one known is refused: unreachable, in one line, no traceback
    known = Path(os.environ["HOME"]) / ".ssh" / "known_hosts"
    port = address.rsplit(":", 1)[1]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(known.parent / "other")], check=True)
    known.write_text(f"[127.0.0.1]:{port} {' '.join((known.parent / 'other.pub').read_text().split()[:2])}\n")
    listed = {r["name"]: r for r in agencystack_run("hosts", "list", "--json").json()}
    assert listed["h3"]["reachable"] is False and "cannot reach" in listed["h3"]["error"]
    assert agencystack_run("hosts", "remove", "h3").exit_code == 0
