"""Readiness: when a started service counts as up -- healthy (its healthcheck), completed (a job that exited 0) or
running (neither) -- bounded by its ``start_timeout``; and, when it is not, one error that says why.

The error quotes what the engine knows (the last health check's output, the container's last log lines) without
terminal escapes and through the deployment's redactor: a secret value a service prints is never repeated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from agencystack.engine import sdk  # noqa: F401 - first: the docker SDK without its ssh transport
import docker.errors
import requests.exceptions

from agencystack.engine.client import EngineRoom
from agencystack.engine.diff import Action
from agencystack.engine.interface import Deployment, Progress
from agencystack.errors import ComponentError
from agencystack.stack import Service

LOG_TAIL_IN_ERRORS = 10
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f]")


class Readiness(EngineRoom):
    """Waiting for one service's container to be up, after a (re)start (convergence, ``restart``)."""

    def await_ready(self, deployment: Deployment, service: Service, container_id: str, action: Action,
                    fresh: bool, progress: Progress, started: float | None = None) -> None:
        """Wait until the service is healthy (healthcheck), completed (job) or running; bounded by start_timeout.
        ``started``: the engine's clock when it answered the start just now (``APIClient.start_dated``), from which
        the wait for health listens without a first inspect (a container just started has no health yet)."""
        current = action.current
        has_health = service.healthcheck is not None and service.healthcheck.test[0] != "NONE"
        if not fresh and current is not None:
            if service.job and current.state == "exited" and current.exit_code == 0:
                return
            if not service.job and (not has_health or current.health == "healthy"):
                return
        if not has_health and not service.job:
            return
        if service.job:
            progress(service.name, "waiting for completion")
            self._await_job(deployment, service, container_id, progress)
            return
        progress(service.name, "waiting for health")
        self._await_health(deployment, service, container_id, progress, started if fresh else None)

    def _await_health(self, deployment: Deployment, service: Service, container_id: str, progress: Progress,
                      started: float | None = None) -> None:
        """Until the engine says healthy, bounded by start_timeout. No polling: the engine's own ``health_status``
        and ``die`` events wake the wait the moment they happen (a stream the engine ends by itself at the
        deadline, measured on its clock), and an inspect decides: the state is the truth, an event only says when
        to look again, so a replayed or stale event costs one more look, never a wrong answer. Right after a start
        (``started``, the engine's clock then) there is nothing to look at yet: the wait listens first, from a
        second before the start, so an exit or a health result since the start is replayed, not missed."""
        deadline = time.monotonic() + service.start_timeout
        # from a second before the start or the inspect (the Date header has whole seconds): what happened between
        # it and the subscription is replayed, not missed
        since = "" if started is None else str(int(started) - 1)
        engine_now = started or 0.0
        look = started is None
        while True:
            if look:
                found, engine_now = self.api.inspect_container_dated(container_id)
                state = found["State"]
                health = (state.get("Health") or {}).get("Status")
                if state.get("Status") in ("exited", "dead"):
                    raise self._failure(deployment, service, container_id,
                                        f"exited ({state.get('ExitCode')}) while waiting for health", state)
                if health == "healthy":
                    progress(service.name, "healthy")
                    return
                if health == "unhealthy":
                    raise self._failure(deployment, service, container_id, "is unhealthy", state)
                if deadline - time.monotonic() <= 0:
                    raise self._failure(deployment, service, container_id,
                                        f"did not become healthy within {service.start_timeout:g}s", state)
                since = since or str(int(engine_now) - 1)
            look = True  # after the first event, or the stream's end at the deadline
            remaining = max(deadline - time.monotonic(), 0.0)
            event = self.api.next_event({"container": [container_id], "event": ["health_status", "die"]}, since,
                                        until=int(engine_now + remaining) + 1, timeout=remaining + 5)
            if event is not None:
                after = int(event.get("timeNano") or 0) + 1  # the next look starts after this event
                since = f"{after // 10**9}.{after % 10**9:09d}" if after > 1 else since

    def _await_job(self, deployment: Deployment, service: Service, container_id: str, progress: Progress) -> None:
        """Block on the engine's wait (no polling) until the one-shot exits; exit 0 means completed."""
        try:
            code = self.api.wait(container_id, timeout=max(1, int(service.start_timeout + 0.999)))["StatusCode"]
        except requests.exceptions.ReadTimeout:
            raise self._failure(deployment, service, container_id,
                                f"did not complete within {service.start_timeout:g}s") from None
        if code != 0:
            raise self._failure(deployment, service, container_id, f"job failed: exited ({code})")
        progress(service.name, "completed")

    def _failure(self, deployment: Deployment, service: Service, container_id: str, what: str,
                 state: Mapping[str, Any] | None = None) -> ComponentError:
        scrub = deployment.redactor().text
        parts = [f"service {service.name} of {deployment.project} {what}"]
        log = ((state or {}).get("Health") or {}).get("Log") or []
        if log:
            last = log[-1]
            output = " ".join(plain(last.get("Output") or "").split())[:300]
            parts.append(f"last health check (exit {last.get('ExitCode')}): {scrub(output) or '(no output)'}")
        try:
            raw = self.api.logs(container_id, stdout=True, stderr=True, tail=LOG_TAIL_IN_ERRORS)
            lines = [scrub(line) for line in plain(raw.decode("utf-8", "replace")).splitlines() if line.strip()]
        except docker.errors.APIError:
            lines = []
        message = "; ".join(parts)
        if lines:
            message += "; last log lines:\n" + "\n".join("  " + line for line in lines[-LOG_TAIL_IN_ERRORS:])
        return ComponentError(message)


def plain(text: str) -> str:
    """A container's output without terminal escapes (colours, cursor moves) or other control characters: an
    error message quoting it is read in logs, JSON and terminals alike (tabs and newlines are kept)."""
    return _ESCAPES.sub("", text.replace("\r\n", "\n"))
