"""The hosts registry (agencystack.fleet) and placement records (agencystack.placement), without an engine:
what the operator types is validated, what is stored holds no secret, removal is refused while clients are placed,
and a root without a registry behaves as it always did (the local engine, nothing written)."""

from __future__ import annotations

import json
import stat

import pytest

from agencystack import placement
from agencystack.errors import UsageError
from agencystack.fleet import LOCAL, Fleet
from agencystack.settings import GlobalSettings


@pytest.fixture
def fleet(agencystack_env, monkeypatch) -> Fleet:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return GlobalSettings.load().fleet()


def test_a_root_without_hosts_has_the_local_engine_only_and_writes_nothing(fleet, agencystack_env):
    assert [h.name for h in fleet.hosts()] == [LOCAL]
    assert fleet.hosts()[0].docker_host == "unix:///nonexistent/docker.sock"
    assert fleet.single
    assert not fleet.root.fleet_file.exists()
    assert GlobalSettings.load().host_client == "host"  # the local edge keeps its client id


def test_hosts_add_stores_the_address_only_0600(agencystack_run, agencystack_env, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (certs / name).write_text(f"-----BEGIN {name}-----\nsecret material\n")
    assert agencystack_run("hosts", "add", "h2", "--docker-host", "unix:///nonexistent/h2.sock").exit_code == 0
    result = agencystack_run("hosts", "add", "tls1", "--docker-host", "tcp://10.0.0.9:2376", "--tls-cert-path",
                             str(certs), "--json")
    assert result.exit_code == 0, result.output
    assert result.json()["reachable"] is False  # registered although it does not answer (yet)
    stored = agencystack_env / "hosts.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    text = stored.read_text()
    assert "secret material" not in text and "BEGIN" not in text  # the path, never the key material
    hosts = {h["name"]: h for h in json.loads(text)["hosts"]}
    assert hosts["tls1"]["tls_cert_path"] == str(certs) and hosts["h2"]["docker_host"] == "unix:///nonexistent/h2.sock"


@pytest.mark.parametrize(("args", "words"), [
    (["H2", "--docker-host", "unix:///x.sock"], "invalid host name"),
    (["local", "--docker-host", "unix:///x.sock"], "local engine"),
    (["h3", "--docker-host", "ssh://ops:hunter2@h3"], "password"),
    (["h3", "--docker-host", "http://h3"], "ssh://user@host"),
    (["h3", "--docker-host", "tcp://h3"], "port"),
    (["h3", "--docker-host", "ssh://ops@h3", "--tls-cert-path", "/"], "tcp://"),
    (["h3", "--docker-host", "tcp://h3:2376", "--tls-cert-path", "/nonexistent"], "ca.pem"),
])
def test_bad_hosts_are_refused_in_one_line_and_nothing_is_written(agencystack_run, agencystack_env, args, words):
    result = agencystack_run("hosts", "add", *args)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.output
    assert not (agencystack_env / "hosts.json").exists()


def test_a_name_is_registered_once(agencystack_run):
    assert agencystack_run("hosts", "add", "h2", "--docker-host", "unix:///nonexistent/a.sock").exit_code == 0
    again = agencystack_run("hosts", "add", "h2", "--docker-host", "unix:///nonexistent/b.sock")
    assert again.exit_code == 2 and "already registered" in again.stderr


def test_a_swarm_is_detected_once_the_input_is_valid_unless_the_operator_says(fleet):
    asked: list[str] = []

    def manager(host) -> bool:
        asked.append(host.name)
        return True

    assert fleet.add("sw", "unix:///nonexistent/sw.sock", detect=manager).swarm
    assert fleet.add("said", "unix:///nonexistent/s.sock", swarm=True, detect=manager).swarm  # --swarm
    assert not fleet.add("plain", "unix:///nonexistent/p.sock").swarm  # --no-swarm: no detect
    for bad in (("BAD", "unix:///x.sock"), ("sw", "unix:///nonexistent/again.sock")):  # invalid, or taken
        with pytest.raises(UsageError):
            fleet.add(*bad, detect=manager)
    assert asked == ["sw"]  # the engine is asked only for valid input, and only when the operator did not say
    assert {h.name: h.swarm for h in fleet.registered()} == {"sw": True, "said": True, "plain": False}


def test_remove_is_refused_while_clients_are_placed(agencystack_run, agencystack_env):
    assert agencystack_run("hosts", "add", "h2", "--docker-host", "unix:///nonexistent/a.sock").exit_code == 0
    root = GlobalSettings.load().state_root
    root.component("acme", "whoami").save_env({"WHOAMI_MESSAGE": "hi"})  # the client has state ...
    placement.record(root, "acme", "h2", timeout=5)  # ... and lives on h2
    assert placement.clients_on(root) == {"h2": ["acme"]}
    refused = agencystack_run("hosts", "remove", "h2")
    assert refused.exit_code == 2 and "acme" in refused.stderr and "move" in refused.stderr
    assert [h["name"] for h in json.loads((agencystack_env / "hosts.json").read_text())["hosts"]] == ["h2"]
    listed = agencystack_run("hosts", "list", "--json")
    assert {r["name"]: r["clients"] for r in listed.json()} == {"local": [], "h2": ["acme"]}
    assert {r["name"]: r["reachable"] for r in listed.json()}["h2"] is False

    root.component("acme", "whoami").env_file.unlink()  # purged: nothing of the client is left there
    assert agencystack_run("hosts", "remove", "h2").exit_code == 0
    assert agencystack_run("hosts", "remove", "h2").exit_code == 2  # unknown now
    assert agencystack_run("hosts", "remove", "local").exit_code == 2


def test_a_placed_client_refuses_another_host(agencystack_env, agencystack_run, monkeypatch):
    """--host naming another host than the client's is refused before anything is loaded or written."""
    from agencystack.component import Component

    assert agencystack_run("hosts", "add", "h2", "--docker-host", "unix:///nonexistent/a.sock").exit_code == 0
    global_settings = GlobalSettings.load()
    root = global_settings.state_root
    root.component("acme", "whoami").save_env({"WHOAMI_MESSAGE": "hi"})
    placement.record(root, "acme", "h2", timeout=5)
    spec = Component(name="whoami")
    placed, client = placement.place(global_settings, spec, "acme", action="status")
    assert client == "acme" and placed.host.name == "h2" and placed.docker_host == "unix:///nonexistent/a.sock"
    with pytest.raises(Exception, match="placed on host 'h2'.*agencystack move"):
        placement.place(global_settings, spec, "acme", host=LOCAL, action="install")
    edge = Component(name="edge", per_host=True)
    placed, client = placement.place(global_settings, edge, None, host="h2")
    assert client == "host-h2" and placed.host_client == "host-h2"  # each host has its own edge
