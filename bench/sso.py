"""What the SSO gate costs on the request path, through the real edge, on the real engine (one run, ratios).

Set-up: the edge, PostHog's stack for one client (echo backends, tests/test_posthog_engine.EchoImages), measured
without an identity provider; then Keycloak (the local pre-built image) installed, which puts the gate in front of
PostHog's UI; a user logs in (tests/sso_login.Browser) and the same requests are measured again.

- public ingestion (``POST``-less ``GET /e/`` to capture) with SSO installed vs without: p50 ratio, target <= 1.05
  (the gate must not touch it: no middleware on public routers);
- an authenticated UI request (``GET /insights`` with the session cookie: Traefik -> forwardAuth -> oauth2-proxy
  -> web) vs the same request unprotected: p50 overhead in ms, target <= 5 ms on this machine.

Requests are sequential over fresh connections (as a browser's first request), N each, interleaved in rounds so a
load spike hits both sides. Prints a table, then ONE JSON line.

Usage: python bench/sso.py   (engine: $DOCKER_HOST; images built if missing: Keycloak and oauth2-proxy cold ~5 min)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from agencystack.lifecycle import run  # noqa: E402
from tests.images import build  # noqa: E402
from tests.sso_login import Browser  # noqa: E402
from tests.test_edge_traefik import edge_host  # noqa: E402
from tests.test_posthog_engine import domain  # noqa: E402
from tests.test_posthog_stack import fake_upstream  # noqa: E402
from tests.test_sso_engine import SsoHost  # noqa: E402

N = 200
TARGET_INGEST_RATIO, TARGET_UI_OVERHEAD_MS = 1.05, 5.0


def timed(port: int, host: str, path: str, cookie: str = "") -> float:
    headers = {"Host": host, **({"Cookie": cookie} if cookie else {})}
    started = time.perf_counter()
    response = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or "X-Echo-Service" not in response.headers:
        raise RuntimeError(f"{host}{path}: HTTP {response.status_code}, not served by the app")
    return elapsed * 1000


def p50(port: int, host: str, path: str, cookie: str = "") -> float:
    for _ in range(5):
        timed(port, host, path, cookie)  # warm-up
    return statistics.median(timed(port, host, path, cookie) for _ in range(N))


def main() -> int:
    images = build.ensure_images()
    client = f"bench{int(time.time()) % 100000}"
    with tempfile.TemporaryDirectory(prefix="bench-sso-") as tmp:
        tmp = Path(tmp)
        with edge_host(tmp, images, "bench") as edge:
            host = SsoHost(tmp / "root", fake_upstream(tmp / "upstream"), images, edge)
            site, port = domain(client), edge.http_port
            try:
                host.install(client)
                open_ingest, open_ui = p50(port, site, "/e/"), p50(port, site, "/insights")
                run(host.keycloak(client, "install"), "install")
                admin = run(host.keycloak(client, "sso"), "sso_admin")
                password = admin.add_user("bench@example.com", temporary=False)
                browser = Browser(port)
                _, page = browser.login(host.app_url(client, "/insights"), "bench@example.com", password)
                if page.headers.get("X-Echo-Service") != f"{client}-web":
                    raise RuntimeError("login failed")
                cookie = "; ".join(f"{k}={v}" for k, v in browser.jar.get(site, {}).items())
                gated_ingest, gated_ui = p50(port, site, "/e/"), p50(port, site, "/insights", cookie)
            finally:
                for ctx in (host.context(client, "uninstall"), host.keycloak(client, "uninstall")):
                    try:
                        run(ctx, "uninstall", purge=True)
                    except Exception as exc:  # noqa: BLE001 - a bench reports, it does not hide its result
                        print(f"cleanup: {exc}", file=sys.stderr)
    ratio, overhead = gated_ingest / open_ingest, gated_ui - open_ui
    print(f"{'request':<34}{'without SSO':>14}{'with SSO':>12}")
    print(f"{'public ingestion GET /e/ (p50)':<34}{open_ingest:>12.2f}ms{gated_ingest:>10.2f}ms  ratio {ratio:.3f} "
          f"(target <= {TARGET_INGEST_RATIO})")
    print(f"{'UI GET /insights (p50)':<34}{open_ui:>12.2f}ms{gated_ui:>10.2f}ms  overhead {overhead:.2f} ms "
          f"(target <= {TARGET_UI_OVERHEAD_MS} ms)")
    print(json.dumps({"bench": "sso", "n": N, "ingest_p50_ms": [round(open_ingest, 3), round(gated_ingest, 3)],
                      "ingest_ratio": round(ratio, 3), "ui_p50_ms": [round(open_ui, 3), round(gated_ui, 3)],
                      "ui_overhead_ms": round(overhead, 3),
                      "targets": {"ingest_ratio": TARGET_INGEST_RATIO, "ui_overhead_ms": TARGET_UI_OVERHEAD_MS},
                      "met": ratio <= TARGET_INGEST_RATIO and overhead <= TARGET_UI_OVERHEAD_MS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
