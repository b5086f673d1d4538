"""PostHog's resource limits (agencystack_posthog/limits.py, an addition to upstream's hobby deployment): every
long-running service renders one, the defaults spread upstream's documented 4 GB, Redpanda is told the memory its
limit leaves it, and each client overrides them through the settings the core provides."""

from __future__ import annotations

import pytest
import yaml

from agencystack import UsageError
from agencystack.testing import compose_file
from agencystack_posthog.limits import DEFAULTS, redpanda_memory
from components.posthog.tests.helpers import SERVICES, fake_upstream, posthog_context

M, G = 1024**2, 1024**3


@pytest.fixture
def upstream(tmp_path):
    return str(fake_upstream(tmp_path / "upstream"))


def test_every_service_has_a_row_and_every_long_running_service_renders_a_memory_limit(agencystack_plugins,
                                                                                        upstream):
    assert set(DEFAULTS) == SERVICES
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": upstream})
    doc = yaml.safe_load(compose_file(ctx))
    running = {s.name for s in ctx.stack().services if s.replicas and not s.job}  # what holds memory while it runs
    assert len(running) == 35
    for name in running:
        limits = doc["services"][name]["deploy"]["resources"]["limits"]
        assert {"memory", "cpus", "pids"} <= set(limits), name


def test_defaults_spread_upstreams_documented_minimum():
    running = {n: v for n, v in DEFAULTS.items() if n not in ("migrate", "kafka-init")}
    assert sum(v.memory_reservation or 0 for v in running.values()) <= 4 * G  # the 4 GB minimum, reserved
    assert sum(v.memory for v in running.values()) <= 2.5 * 3.8 * G  # within the default overcommit of a "4 GB" host
    biggest = sorted(running, key=lambda n: running[n].memory, reverse=True)[:4]
    assert biggest[0] == "clickhouse" and {"kafka", "web"} <= set(biggest)


def test_redpanda_is_told_the_memory_its_limit_leaves_it(agencystack_plugins, upstream):
    assert redpanda_memory(768 * M) == ("576M", "192M") and redpanda_memory(2 * G) == ("1536M", "512M")
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": upstream, "POSTHOG_KAFKA_MEMORY": "2g"})
    kafka = ctx.stack().service("kafka")
    assert kafka.limits.memory == 2 * G
    command = kafka.command
    assert "--memory 1536M" in command and "--reserve-memory 512M" in command
    assert not any(w.startswith(("--memory 3G", "--reserve-memory 500M")) for w in command)


def test_a_clients_override_applies_to_that_client_only(agencystack_plugins, upstream):
    a = posthog_context(agencystack_plugins, client="acme",
                     flags={"POSTHOG_UPSTREAM_DIR": upstream, "POSTHOG_CLICKHOUSE_MEMORY": "3g",
                            "POSTHOG_CLICKHOUSE_CPUS": "2"})
    b = posthog_context(agencystack_plugins, client="globex", flags={"POSTHOG_UPSTREAM_DIR": upstream})
    assert a.stack().service("clickhouse").limits.applied() == {"memory": 3 * G, "memory_reservation": 512 * M,
                                                                "cpus": 2.0, "pids": 4096}
    assert b.stack().service("clickhouse").limits.memory == G
    rendered = yaml.safe_load(compose_file(a))["services"]["clickhouse"]
    assert rendered["deploy"]["resources"]["limits"]["memory"] == "3g"


def test_an_override_below_the_services_minimum_is_refused(agencystack_plugins, upstream):
    ctx = posthog_context(agencystack_plugins, flags={"POSTHOG_UPSTREAM_DIR": upstream,
                                                   "POSTHOG_CLICKHOUSE_MEMORY": "256m"})
    with pytest.raises(UsageError, match="POSTHOG_CLICKHOUSE_MEMORY: 256 MiB is below clickhouse's minimum of 768 MiB"):
        ctx.stack()
