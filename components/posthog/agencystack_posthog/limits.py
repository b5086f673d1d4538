"""PostHog's default resource limits, one row per service: a deliberate addition to upstream's hobby deployment
(which sets none), so that one client's PostHog cannot take the memory of the others on a shared host.

How the numbers were chosen: upstream documents 4 GB and 2 cores as the hobby minimum (16 GB / 4 cores
recommended). The **reservations** (the soft limit the kernel reclaims towards under host pressure) spread those
4 GB over the services by their role (3.3 GiB in all); the **limits** (hard: the kernel OOM-kills past them)
leave each service headroom above its share and add up to 9 GiB for the 35 long-running services: about 2.3 times
the minimum host, under the core's default overcommit ratio of 2.5 (services rarely peak together; on a 4 GB host
install warns, and a second PostHog there is refused). ClickHouse (queries), Redpanda (Kafka), Postgres, web and the Celery worker get the
most; the Node consumers a middle share; the Rust services, which upstream runs with a few tens of MB, the least.
``cpus`` caps the cores a service may use (CPU time is shared, not reserved: the caps add up to more than 2), and
``pids`` stops a runaway fork or thread leak at the container. ``min_memory`` is the floor a client's override may
not go below.

Every value is a default: a client overrides one with ``POSTHOG_<SERVICE>_MEMORY``, ``..._MEMORY_RESERVATION``,
``..._CPUS`` or ``..._PIDS`` (e.g. ``POSTHOG_CLICKHOUSE_MEMORY=3g``). Not verified by running PostHog here (its
images cannot be pulled on this machine): the sizes follow the services' own settings in the stack (Redis and
Valkey's 200 MB ``maxmemory``, Elasticsearch's 256 MB heap) and their roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agencystack import Limits

M = 1024**2

_L = Limits
#: service -> its default limits (memory, reservation, CPUs, pids; min_memory: the floor for overrides)
DEFAULTS: dict[str, Limits] = {
    # data services
    "clickhouse": _L(memory="1g", memory_reservation="512m", cpus=1.5, pids=4096, min_memory="768m"),
    "kafka": _L(memory="768m", memory_reservation="384m", cpus=1, pids=2048, min_memory="512m"),
    "db": _L(memory="384m", memory_reservation="192m", cpus=1, pids=1024, min_memory="128m"),
    "redis7": _L(memory="256m", memory_reservation="64m", cpus=0.5, pids=256, min_memory="256m"),  # maxmemory 200mb
    "valkey": _L(memory="256m", memory_reservation="64m", cpus=0.5, pids=256, min_memory="256m"),  # maxmemory 200mb
    "zookeeper": _L(memory="256m", memory_reservation="96m", cpus=0.5, pids=512),
    "objectstorage": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    "seaweedfs": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    "elasticsearch": _L(memory="512m", memory_reservation="320m", cpus=0.5, pids=1024, min_memory="448m"),  # 256m heap
    "temporal": _L(memory="256m", memory_reservation="96m", cpus=0.5, pids=1024),
    # Django (web, Celery, Temporal worker, the migrate job)
    "web": _L(memory="768m", memory_reservation="320m", cpus=1, pids=1024, min_memory="384m"),
    "worker": _L(memory="512m", memory_reservation="192m", cpus=1, pids=1024, min_memory="256m"),
    "temporal-django-worker": _L(memory="320m", memory_reservation="96m", cpus=0.5, pids=512),
    "migrate": _L(memory="1g", cpus=1, pids=512),
    # Node (posthog-node in its modes)
    "plugins": _L(memory="384m", memory_reservation="128m", cpus=1, pids=512),
    "ingestion-general": _L(memory="384m", memory_reservation="128m", cpus=1, pids=512),
    "ingestion-sessionreplay": _L(memory="256m", memory_reservation="96m", cpus=0.5, pids=512),
    "recording-api": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    "ingestion-error-tracking": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    "ingestion-logs": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    "ingestion-traces": _L(memory="192m", memory_reservation="48m", cpus=0.5, pids=512),
    # Rust
    "capture": _L(memory="96m", memory_reservation="24m", cpus=0.5, pids=256),
    "replay-capture": _L(memory="96m", memory_reservation="24m", cpus=0.5, pids=256),
    "capture-logs": _L(memory="96m", memory_reservation="24m", cpus=0.5, pids=256),
    "property-defs-rs": _L(memory="96m", memory_reservation="24m", cpus=0.5, pids=256),
    "property-defs-ai": _L(memory="96m", memory_reservation="24m", cpus=0.5, pids=256),
    "feature-flags": _L(memory="192m", memory_reservation="64m", cpus=0.5, pids=256),  # GeoLite2 in memory
    "hypercache-server": _L(memory="64m", memory_reservation="16m", cpus=0.25, pids=256),
    "personhog-replica": _L(memory="96m", memory_reservation="24m", cpus=0.25, pids=256),
    "personhog-router": _L(memory="64m", memory_reservation="16m", cpus=0.25, pids=256),
    "cymbal": _L(memory="128m", memory_reservation="32m", cpus=0.5, pids=256),
    "cymbal-resolution": _L(memory="128m", memory_reservation="32m", cpus=0.5, pids=256),
    # the rest
    "livestream": _L(memory="64m", memory_reservation="16m", cpus=0.25, pids=256),
    "browserless": _L(memory="384m", memory_reservation="96m", cpus=1, pids=2048),  # Chromium: many processes
    "temporal-admin-tools": _L(memory="32m", cpus=0.1, pids=64),  # sleeps
    "temporal-ui": _L(memory="96m", memory_reservation="24m", cpus=0.25, pids=256),
    "kafka-init": _L(memory="128m", cpus=0.5, pids=256),
}

#: Redpanda is told its memory on the command line (upstream: --memory 3G --reserve-memory 500M, for a 4 GB host):
#: under a limit it must be told what the limit leaves it, or it refuses to start or is OOM-killed as it grows
REDPANDA_RESERVE_SHARE = 4  # a quarter of the limit stays outside Redpanda's own allocator (at least 128 MiB)


def redpanda_memory(limit: int) -> tuple[str, str]:
    """(``--memory``, ``--reserve-memory``) values for a Redpanda under ``limit`` bytes."""
    reserve = max(128 * M, limit // REDPANDA_RESERVE_SHARE)
    return f"{(limit - reserve) // M}M", f"{reserve // M}M"


def apply(services: Iterable, limits: Mapping[str, Limits]) -> None:
    """Give each service its limits (the client's, see :meth:`agencystack.LifecycleContext.limits`), and tell
    Redpanda the memory its limit leaves it."""
    for service in services:
        if service.name in limits:
            service.limits = limits[service.name]
        if service.name == "kafka" and service.limits.memory and service.command:
            memory, reserve = redpanda_memory(service.limits.memory)
            # upstream's argv passes each option with its value as one word ("--memory 3G")
            words = {"--memory": f"--memory {memory}", "--reserve-memory": f"--reserve-memory {reserve}"}
            service.command = [words.get(word.split(" ", 1)[0], word) for word in service.command]


def effective(context) -> dict[str, Limits]:
    """This client's limits for every service of the table."""
    return {name: context.limits(name, default) for name, default in DEFAULTS.items()}
