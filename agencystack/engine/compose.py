"""Render a :class:`~agencystack.engine.Deployment` as a compose file, for the operator.

The file sits in the component's directory next to its ``.env``, so ``docker compose`` resolves the ``${KEY}``
references itself: environment values are written exactly as the stack has them (references, never resolved
secrets). Every other string is escaped (``$`` → ``$$``) because the driver passes it to the engine literally.
Names and labels match what :class:`agencystack.engine.docker.DockerDriver` creates (see
:mod:`agencystack.engine.labels`), so ``docker compose -p <project> ps`` / ``logs`` see the same deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from agencystack.engine import labels
from agencystack.limits import compose_size

if TYPE_CHECKING:
    from agencystack.engine import Deployment
    from agencystack.limits import Limits
    from agencystack.stack import HealthCheck, Service

HEADER = ("# Rendered by agencystack: edits are overwritten on the next install.\n"
          "# ${KEY} references resolve from the .env beside this file.\n")


def duration(seconds: float) -> str:
    """A compose duration: ``5`` → ``"5s"``, ``1.5`` → ``"1500ms"``, ``0`` → ``"0s"``."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def _literal(value: str) -> str:
    """A string compose must not interpolate (the driver passes it as is)."""
    return value.replace("$", "$$")


def _healthcheck(check: HealthCheck) -> dict[str, Any]:
    if check.test[0] == "NONE":
        return {"disable": True}
    return {
        "test": [_literal(part) for part in check.test],
        "interval": duration(check.interval),
        "timeout": duration(check.timeout),
        "retries": check.retries,
        "start_period": duration(check.start_period),
    }


def _resources(limits: Limits) -> dict[str, Any]:
    """``deploy.resources`` as the compose specification writes limits and reservations."""
    out: dict[str, Any] = {}
    hard: dict[str, Any] = {}
    if limits.cpus is not None:
        hard["cpus"] = f"{limits.cpus:g}"
    if limits.memory is not None:
        hard["memory"] = compose_size(limits.memory)
    if limits.pids is not None:
        hard["pids"] = limits.pids
    if hard:
        out["limits"] = hard
    if limits.memory_reservation is not None:
        out["reservations"] = {"memory": compose_size(limits.memory_reservation)}
    return out


def _service(deployment: Deployment, service: Service) -> dict[str, Any]:
    stack = deployment.stack
    out: dict[str, Any] = {"image": _literal(service.image)}
    if service.entrypoint is not None:
        out["entrypoint"] = [_literal(part) for part in service.entrypoint]
    if service.command is not None:
        out["command"] = [_literal(part) for part in service.command]
    if service.environment:
        out["environment"] = dict(service.environment)  # ${KEY} references kept: compose resolves them from .env
    if service.volumes:
        out["volumes"] = [f"{_literal(m.source)}:{_literal(m.target)}" + (":ro" if m.read_only else "")
                          for m in service.volumes]
    if service.networks:
        out["networks"] = {net: ({"aliases": list(aliases)} if aliases else {})
                           for net, aliases in service.networks.items()}
    else:
        out["network_mode"] = "none"  # as the driver runs it (compose would otherwise join "default")
    if service.ports:
        out["ports"] = [f"{p.host_ip}:{p.host}:{p.container}" + ("/udp" if p.protocol == "udp" else "")
                        for p in service.ports]
    label_set = labels.service_labels(project=deployment.project, service=service.name, client=deployment.client,
                                 component=deployment.component, version=deployment.version,
                                 working_dir=str(deployment.directory), config_hash=None, job=service.job,
                                 user_labels=service.labels)
    # compose sets its own com.docker.compose.* labels (and rejects them in a file); ours and the user's stay
    out["labels"] = {k: _literal(v) for k, v in label_set.items() if not k.startswith("com.docker.compose.")}
    if service.healthcheck is not None:
        out["healthcheck"] = _healthcheck(service.healthcheck)
    if service.depends_on:
        present = {s.name for s in stack.services}
        out["depends_on"] = {dep: {"condition": labels.CONDITIONS[cond], "required": True}
                             for dep, cond in service.depends_on.items() if dep in present}
    out["restart"] = service.restart
    if service.init:
        out["init"] = True
    out["logging"] = {"driver": service.logging.driver,
                      **({"options": {k: _literal(v) for k, v in service.logging.options.items()}}
                         if service.logging.options else {})}
    if service.replicas == 0:
        out["deploy"] = {"replicas": 0}
    if service.limits.is_set:
        out.setdefault("deploy", {})["resources"] = _resources(service.limits)
        if service.limits.memory is not None:
            out["memswap_limit"] = compose_size(service.limits.memory)  # no swap beyond the limit, as the driver
    if service.user is not None:
        out["user"] = _literal(service.user)
    if service.working_dir is not None:
        out["working_dir"] = _literal(service.working_dir)
    out["stop_grace_period"] = duration(service.stop_grace_period)
    return out


def document(deployment: Deployment) -> dict[str, Any]:
    """The compose file as data (what :func:`render` dumps)."""
    stack = deployment.stack
    meta = dict(client=deployment.client, component=deployment.component, version=deployment.version)
    doc: dict[str, Any] = {"name": deployment.project,
                           "services": {s.name: _service(deployment, s) for s in stack.services}}
    if stack.networks:
        doc["networks"] = {}
        for net in stack.networks:
            if net.external:
                doc["networks"][net.name] = {"name": net.name, "external": True}
                continue
            spec: dict[str, Any] = {"name": labels.network_name(deployment.project, net.name)}
            if net.internal:
                spec["internal"] = True
            spec["labels"] = labels.ours(**meta)
            doc["networks"][net.name] = spec
    if stack.volumes:
        doc["volumes"] = {}
        for vol in stack.volumes:
            if vol.external:
                doc["volumes"][vol.name] = {"name": vol.name, "external": True}
            else:
                doc["volumes"][vol.name] = {"name": labels.volume_name(deployment.project, vol.name),
                                            "labels": labels.ours(**meta)}
    return doc


def render(deployment: Deployment) -> str:
    """The deployment as compose YAML (valid against the compose specification)."""
    # libyaml's emitter when PyYAML has it (the same bytes, ~4x faster: PostHog's file takes 64 ms in Python, and
    # every install, even one with nothing to do, renders it to compare); the safe representer either way
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return HEADER + yaml.dump(document(deployment), Dumper=dumper, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=120)
