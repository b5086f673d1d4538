"""HTTP probes (:class:`agencystack.HttpProbe`, ``Stack.probes``): the core's default install waits for them and the
core's default status reports them, for every component that declares them.

A probe's URL is the one the operator opens (the edge rewrites routed hosts to the scheme and port it serves). The
request goes to this host's edge -- the engine's host, loopback for a local engine -- with the URL's host name as
``Host`` header and TLS server name, so a domain whose DNS is not set up yet, or whose certificate ACME has not
issued yet, still shows whether the component answers behind the edge.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from agencystack.results import ServiceStatus
    from agencystack.stack import HttpProbe

PROGRESS_EVERY = 15  # seconds between "still waiting" lines during install


def edge_address(docker_host: str) -> str:
    """Where this host's edge answers: the engine's host (loopback for a local socket)."""
    parts = urlsplit(docker_host)
    return parts.hostname if parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname else "127.0.0.1"


#: what a request through the edge raises when nothing (or nothing HTTP) answers
UNANSWERED = (OSError, http.client.HTTPException)


def through_edge(url: str, *, via: str = "127.0.0.1", port: int | None = None,
                 timeout: float = 5) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET ``url`` at this host's edge (address ``via``; port ``port`` when the edge does not listen on the URL's
    own, as a test's edge on free loopback ports) with the URL's host name as TLS server name and its ``host[:port]``
    as ``Host`` header, certificates not checked (the edge is ours; ACME may lag): (status, headers
    (case-insensitive), body). Raises one of :data:`UNANSWERED` when nothing answers."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = port or parts.port or (443 if tls else 80)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection((via, port), timeout=timeout)
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        conn.sock = context.wrap_socket(raw, server_hostname=host)
    else:
        conn = http.client.HTTPConnection(via, port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers={"Host": parts.netloc})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def probe(url: str, *, via: str = "127.0.0.1", expect: int = 200, timeout: float = 5) -> tuple[bool, str]:
    """GET ``url`` through the edge at address ``via``. Returns (True, "200") when it answers ``expect``, else
    (False, what happened: the status code, or the connection error in one line)."""
    try:
        status, _, _ = through_edge(url, via=via, timeout=timeout)
    except UNANSWERED as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return status == expect, str(status)


def check(item: HttpProbe, via: str) -> tuple[bool, str]:
    return probe(item.url, via=via, expect=item.expect_status, timeout=item.timeout)


def rows(items: Iterable[HttpProbe], via: str) -> list[ServiceStatus]:
    """One status row per probe: ``running`` when it answers as expected, ``failed`` with what it answered."""
    from agencystack.results import ServiceStatus, State

    found = []
    for item in items:
        ok, detail = check(item, via)
        found.append(ServiceStatus(item.label, State.RUNNING if ok else State.FAILED, f"{detail} {item.url}"))
    return found


def wait(items: Iterable[HttpProbe], *, via: str, who: str, progress: Callable[[str, str], None],
         hint: str = "") -> None:
    """Wait for every probe (each bounded by its ``wait`` seconds; ``wait=0``: not waited for), saying so every
    :data:`PROGRESS_EVERY` seconds; ComponentError naming the probe and its last answer when one does not answer."""
    from tenacity import RetryError, retry, retry_if_result, stop_after_delay, wait_fixed

    from agencystack.errors import ComponentError

    for item in items:
        if not item.wait:
            continue
        started = last = time.monotonic()

        def report(state, item=item) -> None:
            nonlocal last
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                progress(item.label, f"waiting for {item.url} ({int(last - started)}s, last: "
                                     f"{state.outcome.result()[1]})")

        attempt = retry(retry=retry_if_result(lambda answer: not answer[0]), stop=stop_after_delay(item.wait),
                        wait=wait_fixed(item.interval), before_sleep=report)(check)
        progress(item.label, f"waiting for {item.url}")
        try:
            attempt(item, via)
        except RetryError as exc:
            _, detail = exc.last_attempt.result()
            raise ComponentError(f"{who} did not answer {item.url} within {item.wait:g}s (last: {detail}; expected "
                                 f"{item.expect_status}){hint}") from None
        progress(item.label, "answers")
