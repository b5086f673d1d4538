"""compose.render: the operator's compose file — references kept, names and labels as the driver makes them,
and accepted by docker compose v2 itself (the static binary is the oracle; no engine needed for ``config``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from agencystack.engine import compose
from agencystack.engine import Deployment
from agencystack.engine import labels
from agencystack.stack import HealthCheck, Logging, Mount, Network, Port, Service, Stack, Volume

pytest_plugins = ["tests.engine.fixtures"]  # compose_bin; also loaded by tests/conftest.py

SECRET = "s3cret-Value-never-rendered"


def full_deployment(directory: Path) -> Deployment:
    stack = Stack(
        services=[
            Service(name="db", image="agencystack-test/postgres:15",
                    environment={"POSTGRES_PASSWORD": "${DB_PASSWORD}", "LITERAL": "costs $$5", "PLAIN": "x"},
                    volumes=[Mount(source="pgdata", target="/var/lib/postgresql/data"),
                             Mount(source="/etc/hosts", target="/host-hosts", read_only=True)],
                    healthcheck=HealthCheck(test=["CMD-SHELL", "pg_isready -U $POSTGRES_USER"], interval=1.5,
                                            timeout=3, retries=10, start_period=0.25),
                    stop_grace_period=30, user="postgres", labels={"team": "data"}),
            Service(name="migrate", image="example/app:1", command=["sh", "-c", "migrate up && echo $HOME"],
                    job=True, depends_on={"db": "healthy"}),
            Service(name="web", image="example/app:1", entrypoint=["/entry"], command=["serve"],
                    depends_on={"migrate": "completed", "db": "started"},
                    ports=[Port(container=8000, host=8080), Port(container=53, host=5353, protocol="udp",
                                                                  host_ip="0.0.0.0")],
                    networks={"default": ["app"], "edge": []}, init=True, working_dir="/srv",
                    logging=Logging(driver="local", options={"max-size": "10m"})),
            Service(name="spare", image="example/app:1", replicas=0, restart="no"),
        ],
        volumes=[Volume(name="pgdata"), Volume(name="shared", external=True)],
        networks=[Network(name="default"), Network(name="back", internal=True), Network(name="edge", external=True)],
    )
    return Deployment(project="acme_posthog", client="acme", component="posthog", stack=stack,
                      env={"DB_PASSWORD": SECRET}, directory=directory, version="1.0.0")


def test_render_keeps_references_and_matches_driver_names(tmp_path: Path) -> None:
    dep = full_deployment(tmp_path)
    text = compose.render(dep)
    assert SECRET not in text
    doc = yaml.safe_load(text)
    assert list(doc) == ["name", "services", "networks", "volumes"]
    assert doc["name"] == "acme_posthog"
    db = doc["services"]["db"]
    assert db["environment"] == {"POSTGRES_PASSWORD": "${DB_PASSWORD}", "LITERAL": "costs $$5", "PLAIN": "x"}
    assert db["volumes"] == ["pgdata:/var/lib/postgresql/data", "/etc/hosts:/host-hosts:ro"]
    assert db["healthcheck"] == {"test": ["CMD-SHELL", "pg_isready -U $$POSTGRES_USER"], "interval": "1500ms",
                                 "timeout": "3s", "retries": 10, "start_period": "250ms"}
    assert db["stop_grace_period"] == "30s" and db["user"] == "postgres"
    assert db["labels"]["team"] == "data"
    assert {k: db["labels"][k] for k in (labels.CLIENT, labels.COMPONENT, labels.MANAGED, labels.VERSION)} == {
        labels.CLIENT: "acme", labels.COMPONENT: "posthog", labels.MANAGED: "true", labels.VERSION: "1.0.0"}
    assert not any(k.startswith("com.docker.compose.") for k in db["labels"])  # compose sets those itself
    migrate = doc["services"]["migrate"]
    assert migrate["command"] == ["sh", "-c", "migrate up && echo $$HOME"]  # literal for compose, as the driver runs it
    assert migrate["restart"] == "no" and migrate["labels"][labels.JOB] == "true"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy", "required": True}}
    web = doc["services"]["web"]
    assert web["ports"] == ["127.0.0.1:8080:8000", "0.0.0.0:5353:53/udp"]
    assert web["networks"] == {"default": {"aliases": ["app"]}, "edge": {}}
    assert web["depends_on"] == {"migrate": {"condition": "service_completed_successfully", "required": True},
                                 "db": {"condition": "service_started", "required": True}}
    assert web["entrypoint"] == ["/entry"] and web["command"] == ["serve"] and web["init"] is True
    assert web["working_dir"] == "/srv"
    assert web["logging"] == {"driver": "local", "options": {"max-size": "10m"}}
    assert doc["services"]["spare"]["deploy"] == {"replicas": 0}
    assert doc["networks"]["default"]["name"] == "acme_posthog_default"
    assert doc["networks"]["back"] == {"name": "acme_posthog_back", "internal": True,
                                       "labels": labels.ours("acme", "posthog", "1.0.0")}
    assert doc["networks"]["edge"] == {"name": "edge", "external": True}
    assert doc["volumes"]["pgdata"]["name"] == labels.volume_name("acme_posthog", "pgdata")
    assert doc["volumes"]["shared"] == {"name": "shared", "external": True}
    assert "restart: 'no'" in text  # quoted: a bare no is a YAML boolean


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (0, "0s"), (1.5, "1500ms"), (0.25, "250ms"),
                                               (90, "90s")])
def test_durations(seconds: float, text: str) -> None:
    assert compose.duration(seconds) == text


def test_docker_compose_config_accepts_the_rendered_file(tmp_path: Path, compose_bin: Path) -> None:
    dep = full_deployment(tmp_path)
    (tmp_path / "compose.yaml").write_text(compose.render(dep))
    (tmp_path / ".env").write_text(f"DB_PASSWORD={SECRET}\n")
    quiet = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--quiet"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    result = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--format", "json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    # compose resolved the reference from the .env beside the file; literal dollars stayed literal (config prints
    # them escaped again, as $$): nothing was interpolated from this process's environment ($HOME)
    assert "is not set" not in quiet.stderr + result.stderr
    db = resolved["services"]["db"]
    assert db["environment"]["POSTGRES_PASSWORD"] == SECRET
    assert db["environment"]["LITERAL"] == "costs $$5"
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U $$POSTGRES_USER"]
    assert resolved["services"]["migrate"]["command"] == ["sh", "-c", "migrate up && echo $$HOME"]
    # what compose would create has the driver's names
    assert resolved["networks"]["default"]["name"] == "acme_posthog_default"
    assert resolved["networks"]["edge"]["external"] is True
    assert resolved["volumes"]["pgdata"]["name"] == "acme_posthog_pgdata"
    web = resolved["services"]["web"]
    assert {p["published"] for p in web["ports"]} == {"8080", "5353"}
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert resolved["services"]["spare"]["deploy"]["replicas"] == 0


def test_render_of_a_minimal_stack_is_valid(tmp_path: Path, compose_bin: Path) -> None:
    dep = Deployment(project="c_min", client="c", component="min",
                     stack=Stack(services=[Service(name="only", image="busybox")]), env={}, directory=tmp_path)
    (tmp_path / "compose.yaml").write_text(compose.render(dep))
    result = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
