"""``agencystack doctor`` names the fix for every check it does not pass (issue 17): the engine missing or
stopped, too little memory for a component, a port that is taken. Real host facts throughout: a socket nobody
listens on, this host's own memory against a component that asks for more, a port this test really holds."""

from __future__ import annotations

import json
import socket

import pytest

from agencystack.component import Component, Resources
from agencystack.doctor import run_checks
from agencystack.settings import GlobalSettings


@pytest.fixture
def global_settings(agencystack_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return GlobalSettings.load()


def test_every_check_that_does_not_pass_names_its_fix(agencystack_run, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = agencystack_run("doctor", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["engine"]["result"] == "fail"
    for check in checks.values():
        assert bool(check["fix"]) == (check["result"] != "ok"), check
    text = agencystack_run("doctor")
    assert "       fix: start the engine: systemctl start docker" in text.stdout


def test_engine_stopped_says_how_to_start_it(global_settings):
    engine = next(c for c in run_checks(global_settings, ports=()) if c.name == "engine")
    assert engine.result == "fail" and "no-engine.sock" in engine.detail
    assert "systemctl start docker" in engine.fix and "make engine" in engine.fix and "DOCKER_HOST" in engine.fix


def test_engine_not_installed_says_how_to_install_it(global_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without docker/dockerd on PATH
    engine = next(c for c in run_checks(global_settings, ports=()) if c.name == "engine")
    assert engine.result == "fail" and "apt-get install -y docker.io" in engine.fix


def test_remote_engine_unreachable_says_to_check_that_host(agencystack_env, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # discard port: nothing answers the API there
    engine = next(c for c in run_checks(GlobalSettings.load(), ports=()) if c.name == "engine")
    assert engine.result == "fail" and "tcp://127.0.0.1:9" in engine.fix and "DOCKER_HOST" in engine.fix


def test_too_little_memory_for_a_component_says_how_much_to_add(global_settings):
    from agencystack.doctor import memory_gb

    need = memory_gb() * 4 + 1  # more than this host has, whatever it has
    huge = Component("huge", resources=Resources(min_memory_gb=need, min_cpus=1))
    small = Component("small", resources=Resources(min_memory_gb=0.1, min_cpus=1))
    checks = {c.name: c for c in run_checks(global_settings, [huge, small], ports=())}
    assert checks["resources for huge"].result == "fail"
    assert f"resize this host to at least {need:g} GB memory" in checks["resources for huge"].fix
    assert "on a larger host" in checks["resources for huge"].fix
    assert checks["resources for small"].result == "ok" and not checks["resources for small"].fix


def test_below_recommendation_is_a_warning_with_the_comfortable_size(global_settings):
    from agencystack.doctor import memory_gb

    big = memory_gb() * 4 + 1
    component = Component("roomy", resources=Resources(min_memory_gb=0.1, min_cpus=1, recommended_memory_gb=big,
                                                       recommended_cpus=1))
    check = next(c for c in run_checks(global_settings, [component], ports=()) if c.name == "resources for roomy")
    assert check.result == "warn" and f"{big:g} GB" in check.fix


def test_port_taken_says_how_to_find_and_free_it(global_settings):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        check = next(c for c in run_checks(global_settings, ports=(port,)) if c.name == f"port {port}")
    assert check.result == "warn"
    assert f"ss -ltnp 'sport = :{port}'" in check.fix and "80 and 443" in check.fix


def test_the_recommendation_warning_names_only_what_falls_short():
    """Plenty of memory but two CPUs: the warning says the CPUs are short, not the memory (it said "23.5 GB / 2
    CPUs is below the recommendation (16 GB / 4 CPUs)", as if 23.5 GB were too little)."""
    from agencystack.doctor import component_checks

    big = Component(name="big", description="", resources=Resources(min_memory_gb=1, min_cpus=1,
                                                                      recommended_memory_gb=16, recommended_cpus=4))
    (cpus_only,) = component_checks([big], memory=23.5, n_cpus=2)
    assert cpus_only.result == "warn"
    assert cpus_only.detail == "this host's 2 CPUs (recommended: 4) is below upstream's recommendation for big"
    (both,) = component_checks([big], memory=8, n_cpus=2)
    assert both.detail == ("this host's 8.0 GB memory (recommended: 16 GB) and 2 CPUs (recommended: 4) are below "
                           "upstream's recommendation for big")
