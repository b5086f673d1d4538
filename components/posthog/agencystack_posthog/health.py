"""Reaching PostHog as its users do: /_health through the edge, and the host's resources before installing."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from urllib.parse import urlsplit

from agencystack import ComponentError

TIMEOUT = 5


def edge_address(docker_host: str) -> str:
    """Where this host's edge answers: the engine's host (loopback for a local socket)."""
    parts = urlsplit(docker_host)
    return parts.hostname if parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname else "127.0.0.1"


def probe(url: str, *, via: str = "127.0.0.1", expect: int = 200, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """GET ``url`` through the edge at address ``via`` (Host header and TLS server name from the URL), so that a
    domain whose DNS is not set up yet, or whose certificate ACME has not issued yet, still shows whether PostHog
    answers behind the edge. Returns (True, "200") when it answers ``expect``, else (False, what happened)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the edge is ours; ACME may lag
            raw = socket.create_connection((via, parts.port or 443), timeout=timeout)
            conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout, context=context)
            conn.sock = context.wrap_socket(raw, server_hostname=host)
        else:
            conn = http.client.HTTPConnection(via, parts.port or 80, timeout=timeout)
        try:
            conn.request("GET", parts.path or "/", headers={"Host": parts.netloc})
            status = conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return status == expect, str(status)


def wait(url: str, *, via: str, timeout: float, interval: float, every: float, progress) -> None:
    """Poll ``url`` until it answers 200 (tenacity: bounded by ``timeout``), reporting every ``every`` seconds."""
    from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

    started = time.monotonic()
    last = [started]

    def report(state) -> None:
        if time.monotonic() - last[0] >= every:
            last[0] = time.monotonic()
            progress("web", f"waiting for {url} ({int(last[0] - started)}s, last: {state.outcome.result()[1]})")

    attempt = retry(retry=retry_if_result(lambda r: not r[0]), stop=stop_after_delay(timeout),
                    wait=wait_fixed(interval), before_sleep=report)(probe)
    progress("web", f"waiting for {url}")
    try:
        attempt(url, via=via)
    except RetryError as exc:
        ok, detail = exc.last_attempt.result()
        raise ComponentError(f"PostHog did not answer {url} within {int(timeout)}s (last: {detail}); "
                             "see 'agencystack logs posthog --service web'") from None
    progress("web", "healthy")


def host_resources() -> tuple[float, int]:
    """This host's memory (GB) and CPUs."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return memory, os.cpu_count() or 1


def check_resources(context) -> None:
    """Refuse a host below the component's minimum; warn below upstream's recommendation."""
    need = context.component.resources
    memory, cpus = host_resources()
    if memory < need.min_memory_gb * 0.95 or cpus < need.min_cpus:  # 5%: "4 GB" hosts report a little less
        raise ComponentError(f"this host has {memory:.1f} GB memory and {cpus} CPUs; PostHog needs at least "
                             f"{need.min_memory_gb:g} GB and {need.min_cpus} CPUs")
    if memory < need.recommended_memory_gb * 0.95 or cpus < need.recommended_cpus:
        message = (f"below upstream's recommendation of {need.recommended_memory_gb:g} GB / "
                   f"{need.recommended_cpus} CPUs ({memory:.1f} GB / {cpus} CPUs): expect a slow first boot")
        context.log.warning(message)
        context.progress(context.component.name, message)
