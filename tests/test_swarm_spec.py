"""A stack service as a Swarm service spec (agencystack.engine.swarm_spec): pure, no engine."""

from __future__ import annotations

from agencystack.engine import swarm_spec as specs
from agencystack.limits import Limits
from agencystack.stack import HealthCheck, Mount, Port, Service, Stack, Volume
from tests.engine.helpers import deployment

IMAGE = "agencystack-test/busybox:1"


def _dep(*services: Service, env: dict[str, str] | None = None):
    return deployment("acme_demo", Stack(services=list(services), volumes=[Volume(name="data")]),
                      env=env or {"DEMO_SECRET": "s3cret-value"})


def test_limits_are_limits_and_reservations_and_the_endpoint_is_dnsrr_with_host_ports():
    web = Service(name="web", image=IMAGE, limits=Limits(memory="256m", cpus=0.5), ports=[Port(container=80, host=8080)],
                  healthcheck=HealthCheck(test=["CMD", "true"], interval=2), swarm_replicas=3)
    spec = specs.build(_dep(web), web)
    assert spec["Name"] == "acme_demo_web" and spec["Labels"][specs.STACK_NAMESPACE] == "acme_demo"
    res = spec["TaskTemplate"]["Resources"]
    assert res["Limits"] == {"MemoryBytes": 256 * 2**20, "NanoCPUs": 500_000_000} == res["Reservations"]
    assert spec["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Interval"] == 2 * specs.NS
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert spec["UpdateConfig"]["Order"] == "start-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert spec["UpdateConfig"]["Parallelism"] == 1
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "acme_demo_default", "Aliases": ["web"]}]


def test_a_service_with_a_volume_runs_once_stop_first_pinned_to_its_volumes_node():
    db = Service(name="db", image=IMAGE, volumes=[Mount(source="data", target="/data")], swarm_replicas=3)
    spec = specs.pinned(specs.build(_dep(db), db), specs.pin_label("acme_demo", "data"))
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}} and spec["UpdateConfig"]["Order"] == "stop-first"
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.io.agencystack.volume.acme_demo_data==true"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] == "acme_demo_data"


def test_a_job_is_a_replicated_job_without_update_policy():
    job = Service(name="migrate", image=IMAGE, job=True, command=["true"])
    spec = specs.build(_dep(job), job)
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert "UpdateConfig" not in spec and spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["true"]


def test_the_digest_follows_the_resolved_values_and_nothing_else():
    web = Service(name="web", image=IMAGE, environment={"SECRET": "${DEMO_SECRET}"})
    one = specs.stamped(specs.build(_dep(web), web))
    assert one == specs.stamped(specs.build(_dep(web), web))
    other = specs.stamped(specs.build(_dep(web, env={"DEMO_SECRET": "another-value"}), web))
    assert other["Labels"]["io.agencystack.config-hash"] != one["Labels"]["io.agencystack.config-hash"]
    assert "s3cret-value" not in str(one["Labels"])


def test_swarm_replicas_leave_the_single_host_config_hash_as_it_was():
    plain = Service(name="web", image=IMAGE)
    assert plain.config_hash({}) == Service(name="web", image=IMAGE, swarm_replicas=4).config_hash({})


def test_a_global_service_runs_on_every_allowed_node_with_its_own_volumes_unpinned():
    edge = Service(name="traefik", image=IMAGE, swarm_global=True, swarm_placement=["node.role == manager"],
                   volumes=[Mount(source="data", target="/data")])
    spec = specs.build(_dep(edge), edge)
    assert spec["Mode"] == {"Global": {}} and not specs.stateful(edge)
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.role == manager"]
    assert spec["UpdateConfig"]["Order"] == "start-first"  # no volume pins it: each node has its own


def test_placement_and_a_pin_add_up():
    db = Service(name="db", image=IMAGE, swarm_placement=["node.labels.ssd == true"],
                 volumes=[Mount(source="data", target="/data")])
    spec = specs.pinned(specs.build(_dep(db), db), specs.pin_label("acme_demo", "data"))
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.ssd == true", "node.labels.io.agencystack.volume.acme_demo_data==true"]


def test_routing_labels_are_on_the_service_where_traefiks_swarm_provider_reads_them():
    web = Service(name="web", image=IMAGE, labels={"traefik.enable": "true", "traefik.docker.network": "agencystack_edge",
                                                   "com.example.other": "x"})
    spec = specs.build(_dep(web), web)
    assert spec["Labels"]["traefik.enable"] == "true" and spec["Labels"]["traefik.docker.network"] == "agencystack_edge"
    assert "com.example.other" not in spec["Labels"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"]["com.example.other"] == "x"


def test_the_swarm_fields_leave_the_single_host_config_hash_as_it_was():
    plain = Service(name="web", image=IMAGE)
    assert plain.config_hash({}) == Service(name="web", image=IMAGE, swarm_global=True,
                                            swarm_placement=["node.role == manager"]).config_hash({})


def test_the_edge_on_a_swarm_reads_the_swarm_provider_and_runs_on_every_manager():
    from agencystack.edge.settings import EdgeSettings
    from agencystack.edge.traefik import build

    settings = EdgeSettings()
    single, swarm = build(settings).service("traefik"), build(settings, swarm=True).service("traefik")
    assert "--providers.docker=true" in single.command and not any("providers.swarm" in f for f in single.command)
    assert "--providers.swarm=true" in swarm.command and not any("providers.docker" in f for f in swarm.command)
    assert f"--providers.swarm.network={settings.network}" in swarm.command
    assert swarm.swarm_global and swarm.swarm_placement == ["node.role == manager"]
    assert single.config_hash({}) == build(settings).service("traefik").config_hash({})
