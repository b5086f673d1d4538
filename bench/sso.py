"""What the SSO gate costs on the request path, through the real edge, on the real engine (one run, ratios).

Set-up: the edge, and PostHog's stack (echo backends, components/posthog/tests/helpers.EchoImages) for two clients
on it: ``open`` has no identity provider, ``gated`` gets Keycloak (the local pre-built image), which puts the gate
(Traefik forwardAuth -> oauth2-proxy) in front of its UI; a user logs in (tests/sso_login.Browser) and the session
cookie is kept. Then, in each of N rounds, one request of each kind below, the order rotated per round, so a load
spike on the shared host hits both sides of a comparison alike:

- public ingestion (``GET /e/``, to capture) of ``gated`` vs ``open``: p50 ratio, target <= 1.05 (the gate must
  not touch it: no middleware on public routers);
- an authenticated UI request (``GET /insights`` with the session cookie: Traefik -> forwardAuth -> oauth2-proxy ->
  web) of ``gated`` vs the same request to ``open`` (unprotected): p50 overhead in ms, target <= 5 ms.

Every request is a fresh connection (as a browser's first), checked to be served by the expected backend; a gated
UI request without the cookie is checked to be refused (the gate is really there). Prints progress on stderr, a
table, then ONE JSON line; exit 0 whether or not the targets are met ("met" says), 1 if the set-up failed.

Usage: python bench/sso.py   (engine: $DOCKER_HOST; images built if missing: Keycloak and oauth2-proxy cold ~5 min;
Keycloak's first start takes 30-60 s on a quiet two-core host, minutes on a loaded one)
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agencystack.lifecycle import run  # noqa: E402
from tests.images import build  # noqa: E402
from tests.sso_login import Browser  # noqa: E402
from components.posthog.tests.helpers import domain, posthog_host  # noqa: E402
from tests.test_sso_engine import SsoHost  # noqa: E402

N = 300
WARM_UP = 10
TARGET_INGEST_RATIO, TARGET_UI_OVERHEAD_MS = 1.05, 5.0
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def timed(port: int, host: str, path: str, cookie: str = "", expect: str | None = None) -> float:
    """One GET over a fresh connection, in ms; raises unless served by ``expect`` (None: must NOT be served)."""
    headers = {"Host": host, **({"Cookie": cookie} if cookie else {})}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    elapsed = (time.perf_counter() - started) * 1000
    served = response.getheader("X-Echo-Service") if response.status == 200 else None
    if served != expect:
        raise RuntimeError(f"{host}{path}: HTTP {response.status}, served by {served}, expected {expect}")
    return elapsed


def measure(port: int, cases: dict[str, tuple]) -> dict[str, list[float]]:
    names = list(cases)
    for name in names:
        for _ in range(WARM_UP):
            timed(port, *cases[name])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(N):
        for name in names[i % len(names):] + names[:i % len(names)]:
            samples[name].append(timed(port, *cases[name]))
        if (i + 1) % 100 == 0:
            say(f"{i + 1}/{N} rounds")
    return samples


def main() -> int:
    images = build.ensure_images()
    stamp = int(time.time()) % 100000
    opened, gated = f"bench{stamp}", f"bench{stamp}-sso"
    with tempfile.TemporaryDirectory(prefix="bench-sso-") as tmp:
        tmp = Path(tmp)
        with posthog_host(tmp, images, "bench", SsoHost) as host:
            port = host.edge.http_port
            try:
                say(f"installing PostHog (echo backends) for {opened} and {gated}")
                host.install(opened)
                host.install(gated)
                say(f"installing Keycloak for {gated} (its first start is the slow part)")
                run(host.keycloak(gated, "install"), "install")
                password = run(host.keycloak(gated, "sso"), "sso_admin").add_user("bench@example.com",
                                                                                  temporary=False)
                browser = Browser(port)
                try:
                    _, page = browser.login(host.app_url(gated, "/insights"), "bench@example.com", password)
                finally:
                    browser.close()
                if page.headers.get("X-Echo-Service") != f"{gated}-web":
                    raise RuntimeError(f"login failed: HTTP {page.status_code}")
                cookie = "; ".join(f"{k}={v}" for k, v in browser.jar.get(domain(gated), {}).items())
                timed(port, domain(gated), "/insights", "", None)  # without the cookie: refused by the gate
                say(f"measuring: {N} rounds of 4 requests")
                samples = measure(port, {
                    "ingest_open": (domain(opened), "/e/", "", f"{opened}-capture"),
                    "ingest_gated": (domain(gated), "/e/", "", f"{gated}-capture"),
                    "ui_open": (domain(opened), "/insights", "", f"{opened}-web"),
                    "ui_gated": (domain(gated), "/insights", cookie, f"{gated}-web"),
                })
            except Exception as exc:  # noqa: BLE001 - a bench reports its failure in one line
                print(f"bench/sso.py: set-up or measurement failed: {exc}", file=sys.stderr)
                return 1
            finally:
                say("removing both clients' PostHog and Keycloak")
                for ctx in (host.context(opened, "uninstall"), host.context(gated, "uninstall"),
                            host.keycloak(gated, "uninstall")):
                    try:
                        run(ctx, "uninstall", purge=True)
                    except Exception as exc:  # noqa: BLE001 - cleanup reports, it does not hide the result
                        print(f"cleanup: {exc}", file=sys.stderr)
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    ratio = p50["ingest_gated"] / p50["ingest_open"]
    overhead = p50["ui_gated"] - p50["ui_open"]
    met = ratio <= TARGET_INGEST_RATIO and overhead <= TARGET_UI_OVERHEAD_MS
    print(f"{'request (p50 of ' + str(N) + ', fresh connections)':<44}{'without SSO':>12}{'with SSO':>12}")
    print(f"{'public ingestion GET /e/':<44}{p50['ingest_open']:>10.2f}ms{p50['ingest_gated']:>10.2f}ms  "
          f"ratio {ratio:.3f} (target <= {TARGET_INGEST_RATIO})")
    print(f"{'UI GET /insights (logged in; forwardAuth)':<44}{p50['ui_open']:>10.2f}ms{p50['ui_gated']:>10.2f}ms  "
          f"overhead {overhead:+.2f} ms (target <= {TARGET_UI_OVERHEAD_MS} ms)")
    print(json.dumps({"bench": "sso", "n": N, "p50_ms": {k: round(v, 3) for k, v in p50.items()},
                      "ingest_ratio": round(ratio, 3), "ui_overhead_ms": round(overhead, 3),
                      "targets": {"ingest_ratio": TARGET_INGEST_RATIO, "ui_overhead_ms": TARGET_UI_OVERHEAD_MS},
                      "met": met}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
