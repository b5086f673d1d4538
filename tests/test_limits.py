"""Resource limits without an engine: units, the settings every component gets, the plan's update-in-place decision,
the compose rendering (checked by docker compose v2 itself), the overcommit arithmetic, and PostHog's table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from agencystack.engine import compose
from agencystack.capacity import assess, verdict
from agencystack.engine import Deployment
from agencystack.engine import labels
from agencystack.engine import resources
from agencystack.errors import UsageError
from agencystack.limits import Limits, apply_overrides, compose_size, format_size, parse_size, setting_key
from agencystack.results import ServiceStatus, State
from agencystack.settings import ComponentSettings, GlobalSettings, load
from agencystack.stack import Service, Stack
from pydantic_settings import SettingsConfigDict

M, G = 1024**2, 1024**3


@pytest.mark.parametrize(("text", "size"), [("512m", 512 * M), ("3g", 3 * G), ("3G", 3 * G), ("1.5g", 1536 * M),
                                            ("512MiB", 512 * M), ("512mb", 512 * M), ("64k", 64 * 1024),
                                            ("1048576", 1048576), (" 2g ", 2 * G), (7 * M, 7 * M)])
def test_sizes_in_dockers_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "g", "3x", "-1g", "3 gigs", "1e9"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_formats():
    assert format_size(512 * M) == "512 MiB" and format_size(1536 * M) == "1.5 GiB" and format_size(None) == "none"
    assert compose_size(512 * M) == "512m" and compose_size(3 * G) == "3g" and compose_size(6 * M + 1) == "6291457b"


def test_limits_validate_minimums_and_consistency():
    with pytest.raises(ValueError, match="greater than or equal to 6291456"):
        Limits(memory="1m")
    with pytest.raises(ValueError, match="above the memory limit"):
        Limits(memory="64m", memory_reservation="128m")
    with pytest.raises(ValueError, match="below the minimum"):
        Limits(memory="64m", min_memory="128m")
    with pytest.raises(ValueError):
        Limits(cpus=0)
    limits = Limits(memory="1g", memory_reservation="512m", cpus=1.5, pids=256, min_memory="768m")
    assert limits.applied() == {"memory": G, "memory_reservation": 512 * M, "cpus": 1.5, "pids": 256}
    assert Limits.from_token(limits.token()) == limits.applied()
    assert limits.describe() == "memory 1 GiB (reserved 512 MiB), 1.5 CPUs, 256 pids"


def test_setting_keys():
    assert setting_key("POSTHOG_", "ingestion-general") == "POSTHOG_INGESTION_GENERAL_MEMORY"
    assert setting_key("POSTHOG_", "clickhouse", "CPUS") == "POSTHOG_CLICKHOUSE_CPUS"


class DemoSettings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="forbid")
    port: int = 1


def demo_services() -> list[Service]:
    return [Service(name="db", image="x", limits=Limits(memory="256m", min_memory="128m")),
            Service(name="web-app", image="x")]


def test_overrides_come_through_every_layer(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("DEMO_DB_MEMORY=300m\nDEMO_WEB_APP_CPUS=0.25\n")
    monkeypatch.setenv("DEMO_WEB_APP_PIDS", "64")
    monkeypatch.setenv("OTHER_APP_MEMORY", "1k")  # another prefix: not ours, not an error
    loaded = load(DemoSettings, GlobalSettings(), env_file, {"DEMO_DB_MEMORY": "512m", "web_app_memory": "64m"})
    assert loaded.limits == {"DEMO_DB_MEMORY": "512m", "DEMO_WEB_APP_CPUS": "0.25", "DEMO_WEB_APP_PIDS": "64",
                             "DEMO_WEB_APP_MEMORY": "64m"}
    assert loaded.sources["db_memory"] == "flag" and loaded.sources["web_app_cpus"] == "file"
    assert loaded.sources["web_app_pids"] == "environment"
    assert loaded.to_save == {"DEMO_DB_MEMORY": "512m", "DEMO_WEB_APP_MEMORY": "64m"}  # flags stick, as any flag
    services = demo_services()
    apply_overrides(services, loaded.limits, "DEMO_")
    assert services[0].limits.memory == 512 * M and services[0].limits.min_memory == 128 * M
    assert services[1].limits.applied() == {"memory": 64 * M, "cpus": 0.25, "pids": 64}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"DEMO_DB_MEMORY": "100m"}, "DEMO_DB_MEMORY: 100 MiB is below db's minimum of 128 MiB"),
    ({"DEMO_CACHE_MEMORY": "1g"}, "DEMO_CACHE_MEMORY: no service 'cache' (services: db, web-app)"),
    ({"DEMO_DB_MEMORY_RESERVATION": "512m"}, "above the memory limit"),
])
def test_overrides_that_do_not_fit_the_stack(overrides, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        apply_overrides(demo_services(), overrides, "DEMO_")


def test_bad_units_stop_the_settings_load(tmp_path):
    with pytest.raises(UsageError, match="invalid setting DEMO_DB_MEMORY: invalid size '3 gigs'"):
        load(DemoSettings, GlobalSettings(), tmp_path / ".env", {"DEMO_DB_MEMORY": "3 gigs"})
    with pytest.raises(UsageError, match="unknown setting"):  # not a limit, not a field
        load(DemoSettings, GlobalSettings(), tmp_path / ".env", {"DEMO_DB_MEMORYY": "3g"})


def test_limits_do_not_change_the_config_hash():
    """A limit change is not a recreate; and stacks from before limits existed keep their hash."""
    plain = Service(name="a", image="x")
    limited = plain.model_copy(update={"limits": Limits(memory="64m")})
    assert plain.config_hash({}) == limited.config_hash({})


def test_plan_decides_update_in_place_or_recreate():
    service = Service(name="a", image="x", limits=Limits(memory="128m", cpus=1))
    assert resources.change(service, {labels.LIMITS: service.limits.token()}) is None
    kind, reason = resources.change(service, {labels.LIMITS: Limits(memory="64m").token()})
    assert kind == "update" and "memory 64 MiB -> memory 128 MiB, 1 CPUs" in reason and "in place" in reason
    assert resources.change(service, {})[0] == "update"  # a container from before limits: limits added in place
    kind, reason = resources.change(service, {labels.LIMITS: Limits(memory="64m", pids=100).token()})
    assert kind == "recreate" and "cannot unset" in reason
    assert resources.change(Service(name="a", image="x"), {}) is None


def test_cgroup_v1_and_v2_reading(tmp_path):
    v1 = tmp_path / "v1" / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.usage_in_bytes").write_text(f"{50 * M}\n")
    (v1 / "memory.limit_in_bytes").write_text(f"{64 * M}\n")
    (v1 / "memory.stat").write_text(f"cache {8 * M}\ntotal_inactive_file {10 * M}\n")
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert resources.cgroup_usage("abc", tmp_path / "v1") == resources.Usage(40 * M, 64 * M, 2)
    v2 = tmp_path / "v2" / "system.slice" / "docker-abc.scope"
    v2.mkdir(parents=True)
    (v2 / "memory.current").write_text(f"{30 * M}\n")
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.stat").write_text(f"anon 1\ninactive_file {5 * M}\n")
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert resources.cgroup_usage("abc", tmp_path / "v2") == resources.Usage(25 * M, None, 1)
    assert resources.cgroup_usage("nope", tmp_path / "v2") is None


def test_overcommit_arithmetic():
    placed = {"a_posthog": {"web": G, "db": 512 * M, "x": None}, "b_posthog": {"web": G}}
    now = assess(4 * G, placed)
    assert now.committed == 2.5 * G and now.unlimited == ["a_posthog/x"] and verdict(now, 2.5) == "ok"
    after = assess(4 * G, placed, project="b_posthog", adding={"web": 3 * G, "db": 2 * G})  # replaces b's
    assert after.committed == 6.5 * G and verdict(after, 2.5) == "warn" and verdict(after, 1.5) == "fail"
    assert "memory limits total 6.5 GiB on a 4 GiB host (162%)" in after.describe()


def test_status_hint_names_the_setting():
    from agencystack.limits import oom_hint

    status = ServiceStatus("clickhouse", State.FAILED, "OOM-killed at its memory limit (1 GiB)", memory_limit=G,
                           oom_killed=True)
    oom_hint(status, "POSTHOG_")
    assert status.detail.endswith("raise it with POSTHOG_CLICKHOUSE_MEMORY=<size> (now 1 GiB)")


# -- compose --------------------------------------------------------------------------------------------------------
def limited_deployment(directory: Path) -> Deployment:
    stack = Stack(services=[
        Service(name="db", image="example/db:1",
                limits=Limits(memory="512m", memory_reservation="256m", cpus=1.5, pids=256, min_memory="128m")),
        Service(name="web", image="example/web:1", limits=Limits(cpus=0.25)),
        Service(name="spare", image="example/web:1", replicas=0, limits=Limits(memory="64m")),
        Service(name="free", image="example/web:1"),
    ])
    return Deployment(project="acme_demo", client="acme", component="demo", stack=stack, env={}, directory=directory)


def test_compose_renders_limits_as_deploy_resources(tmp_path, compose_bin):
    text = compose.render(limited_deployment(tmp_path))
    doc = yaml.safe_load(text)
    db = doc["services"]["db"]
    assert db["deploy"] == {"resources": {"limits": {"cpus": "1.5", "memory": "512m", "pids": 256},
                                          "reservations": {"memory": "256m"}}}
    assert db["memswap_limit"] == "512m"  # no swap beyond the limit, as the driver creates it
    assert doc["services"]["web"]["deploy"] == {"resources": {"limits": {"cpus": "0.25"}}}
    assert doc["services"]["spare"]["deploy"] == {"replicas": 0, "resources": {"limits": {"memory": "64m"}}}
    assert "deploy" not in doc["services"]["free"] and "memswap_limit" not in doc["services"]["free"]
    (tmp_path / "compose.yaml").write_text(text)
    result = subprocess.run([str(compose_bin), "-f", "compose.yaml", "config", "--format", "json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import json

    resolved = json.loads(result.stdout)["services"]["db"]
    assert resolved["deploy"]["resources"]["limits"] == {"cpus": 1.5, "memory": "536870912", "pids": 256}
    assert resolved["deploy"]["resources"]["reservations"]["memory"] == "268435456"
    assert int(resolved["memswap_limit"]) == 512 * M


def test_compose_file_with_limits_is_valid_against_the_specification(tmp_path, compose_schema):
    import jsonschema

    doc = compose.document(limited_deployment(tmp_path))
    jsonschema.validators.validator_for(compose_schema)(compose_schema).validate(doc)
