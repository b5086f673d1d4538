"""The agency dashboard's web server: Python's standard library only, no framework, nothing from the internet.

Runs in the dashboard container (this directory mounted read-only into a plain Python image, the client's
published registry document mounted read-only at --document) and on the host (``agencystack dashboard serve``).
It never talks to the container engine: health is probed over HTTP, server-side, by a background thread every
--interval seconds (a component answering with a status below 500 is up; no answer, or a 5xx from the edge, is
failed); a result older than --max-age seconds is shown as unknown, never as healthy. Cards whose entry asks for
usage figures (PostHog's events and unique users) get them from that component's API, server-side and cached
(usage.py), with the secret read from --credentials (a file only this server mounts; never from the document).

    GET /                    the page (HTML + /static/style.css; a meta refresh, no JavaScript): times relative
                             to the moment it is rendered ("2 min ago"), the exact ISO time on hover; a "Sign out"
                             link to the gate's /oauth2/sign_out when the document says the page is behind SSO
    GET /api/dashboard.json  what the page shows: the registry document with each component's live health
    GET /healthz             "ok"
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUPPORTED = ("agencystack.dashboard", 1)


class Health:
    """Each component's last probe: {name: {"state", "detail", "checked_at"}}, refreshed by a thread."""

    def __init__(self, document: Path, *, mode: str, edge: str, interval: float, max_age: float, timeout: float):
        self.document, self.mode, self.edge = document, mode, edge
        self.interval, self.max_age, self.timeout = interval, max_age, timeout
        self.results: dict[str, dict] = {}
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="health").start()

    def _loop(self) -> None:
        while True:
            try:
                self.check_all()
            except Exception as exc:  # noqa: BLE001 - the prober must outlive any one bad document
                print(f"health: {exc}", file=sys.stderr)
            time.sleep(self.interval)

    def check_all(self) -> None:
        doc = read_document(self.document)
        for component in doc.get("components", []):
            target = component.get("health") or {}
            url = target.get("internal") if self.mode == "internal" else target.get("url")
            if not url:
                state, detail = "unknown", "no HTTP route to probe"
            else:
                state, detail = self.probe(url)
            with self.lock:
                self.results[component["name"]] = {"state": state, "detail": detail, "checked_at": time.time()}

    def probe(self, url: str) -> tuple[str, str]:
        parts = urllib.parse.urlsplit(url)
        address, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        headers = {"User-Agent": "agencystack-dashboard"}
        if self.mode == "edge":  # on the host: the request goes to the edge, the URL's host as Host header
            headers["Host"] = parts.netloc
            address = self.edge
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        kwargs = {}
        if parts.scheme == "https":
            import ssl

            kwargs["context"] = ssl._create_unverified_context()  # the edge's own certificate; liveness only
        try:
            connection = connection_class(address, port, timeout=self.timeout, **kwargs)
            connection.request("GET", parts.path or "/", headers=headers)
            status = connection.getresponse().status
            connection.close()
        except OSError as exc:
            return "failed", f"no answer: {exc.strerror or exc}"
        except http.client.HTTPException as exc:
            return "failed", f"bad answer: {type(exc).__name__}"
        return ("running", f"HTTP {status}") if status < 500 else ("failed", f"HTTP {status}")

    def of(self, name: str) -> dict:
        with self.lock:
            found = dict(self.results.get(name) or {})
        if not found:
            return {"state": "unknown", "detail": "not probed yet", "checked_at": None, "age": None}
        age = time.time() - found["checked_at"]
        found["age"] = round(age, 1)
        if age > self.max_age:
            found.update(state="unknown", detail=f"last probe {age:.0f}s ago")
        return found


def read_document(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {"components": [], "problem": "no registry document yet (it is written after the next action)"}
    except (OSError, ValueError) as exc:
        return {"components": [], "problem": f"registry document unreadable: {exc}"}
    if (doc.get("schema"), doc.get("version")) != SUPPORTED:
        return {"components": [], "problem": f"unsupported document {doc.get('schema')} v{doc.get('version')}"}
    return doc


def api(health: Health, usage=None) -> dict:
    doc = read_document(health.document)
    for component in doc.get("components", []):
        component["live"] = health.of(component["name"])
        for index, entry in enumerate(component.get("entries") or []):
            if usage is not None and isinstance(entry.get("usage"), dict):
                entry["figures"] = usage.of(component["name"], index)
    return doc


def _figures(entry: dict, now: datetime) -> str:
    """The usage figures of one card (or the one-line reason they are missing)."""
    e = html.escape
    live = entry.get("figures")
    if not isinstance(entry.get("usage"), dict) or not live:
        return ""
    if live.get("state") == "ok":
        rows = "".join(f"<dt>{e(label)}</dt><dd>{value:,}</dd>" for label, value in live["figures"].items())
        fetched = now - timedelta(seconds=live.get("age") or 0)
        return (f'<dl class="usage" data-usage="ok">{rows}</dl>'
                f'<p class="usage-age">fetched {_time(fetched.isoformat(timespec="seconds"), now)}</p>')
    if live.get("state") == "unknown":
        return '<p class="usage" data-usage="unknown">Usage figures: being fetched</p>'
    state, error = e(live.get("state", "")), e(live.get("error", ""))
    return f'<p class="usage error" data-usage="{state}">Usage figures: {error}</p>'


# -- times: relative on the page, exact on hover (computed here, at each render: the page reloads itself) --------
#: (below this many seconds, count in units of, named) -- the last one counts days however many
STEPS = ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h"), (float("inf"), 86400, "day"))


def relative(seconds: float) -> str:
    """``seconds`` before now as a person says it: "just now", "42 s ago", "2 min ago", "3 h ago", "5 days ago"
    (negative: in the future, "in 2 min": another clock)."""
    size = abs(seconds)
    if size < 10:
        return "just now"
    count, name = next((int(size // step), name) for limit, step, name in STEPS if size < limit)
    amount = f"{count} {name}" + ("s" if name == "day" and count != 1 else "")
    return f"in {amount}" if seconds < 0 else f"{amount} ago"


def _time(stamp: str | None, now: datetime) -> str:
    """A document's timestamp (ISO 8601) as ``<time>``: relative text, the exact time as its title (hover) and
    datetime; never broken across lines (style.css). Not a timestamp: shown as it is."""
    e = html.escape
    if not stamp:
        return "-"
    try:
        then = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return e(str(stamp))
    if then.tzinfo is None:  # the core writes UTC
        then = then.replace(tzinfo=timezone.utc)
    text = relative((now - then).total_seconds()) if abs(now - then) < timedelta(days=30) else \
        f"on {then.date().isoformat()}"
    return f'<time datetime="{e(stamp)}" title="{e(stamp)}">{e(text)}</time>'


def failed_install(component: dict) -> str | None:
    """The error of the component's last action when it is a failed install or restore (the card is failed then,
    whatever its probe says: nothing may be deployed at all), else None."""
    last = component.get("last_action") or {}
    if last.get("action") in ("install", "restore") and last.get("outcome") == "failed":
        return last.get("error") or "no error recorded"
    return None


def signed_in_through_gate(data: dict, self_name: str | None) -> bool:
    """Whether this page is served behind the client's SSO gate: the document says so of the dashboard's own
    route (its component's ``sso.state`` is ``protected``). Not served as a component (``agencystack dashboard
    serve``): never."""
    own = next((c for c in data.get("components", []) if self_name and c.get("name") == self_name), None)
    return bool(own and (own.get("sso") or {}).get("state") == "protected")


# -- the page --------------------------------------------------------------------------------------------------
def _card(c: dict, now: datetime) -> str:
    e = html.escape
    live = c.get("live") or {}
    error = failed_install(c)
    state = "failed" if error else live.get("state", "unknown")
    sso = c.get("sso") or {}
    backup = c.get("last_backup")
    last = c.get("last_action") or {}
    version = e(c.get("product_version") or c.get("version") or "-")
    if c.get("product_version") and c.get("version") and c["version"] != c["product_version"]:
        version += f' <span class="muted">plugin {e(c["version"])}</span>'
    rows = [("Version", version),
            ("Health", f"{e(live.get('state', 'unknown'))} <span class=\"muted\">{e(live.get('detail', ''))}</span>"),
            ("Single sign-on", e(sso.get("state") or "not used")),
            ("Last action", " · ".join(filter(None, (e(last.get("action") or "-"), e(last.get("outcome") or ""),
                                                       _time(last.get("at"), now) if last.get("at") else "")))),
            ("Last backup", (f"{_time(backup.get('at'), now)}, {e(_size(backup.get('size')))}, "
                             f"{'verified' if backup.get('verified') else 'not verified'}") if backup else
             "none yet")]
    if last.get("error") and not error:
        rows.append(("Error", e(last["error"])))
    body = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    problem = (f'<p class="failure" data-error="last-install"><strong>{e(last.get("action") or "install")} '
               f'failed</strong> {_time(last.get("at"), now)}: {e(error)}</p>') if error else ""
    if c.get("entries_error"):
        problem += f'<p class="failure" data-error="entries">{e(c["entries_error"])}</p>'
    extra = []
    for entry in c.get("entries") or []:
        links = "".join(f'<a href="{e(u)}">{e(label)}</a>' for label, u in (entry.get("links") or {}).items())
        code = f"<pre><code>{e(entry['code'])}</code></pre>" if entry.get("code") else ""
        extra.append(f'<div class="entry"><h3>{e(entry.get("title", ""))}</h3>'
                     f'<p>{e(entry.get("description", ""))}</p>{_figures(entry, now)}{code}<nav>{links}</nav></div>')
    url = c.get("url")
    link = f'<a class="url" href="{e(url)}">{e(url)}</a>' if url else '<span class="url">no public URL</span>'
    return (f'<article class="card {e(state)}" data-component="{e(c["name"])}" data-state="{e(state)}">'
            f'<header><h2>{e(c["name"])}</h2><span class="badge">{e(state)}</span></header>{link}{problem}'
            f'<dl>{body}</dl>{"".join(extra)}</article>')


def page(data: dict, refresh: int, self_name: str | None = None, now: datetime | None = None) -> str:
    """The client's page: one card per component; times relative to ``now`` (default: the moment of rendering)."""
    e = html.escape
    now = now or datetime.now(timezone.utc)
    cards = [_card(c, now) for c in data.get("components", [])]
    problem = f'<p class="problem">{e(data["problem"])}</p>' if data.get("problem") else ""
    empty = "" if cards else '<p class="empty">No component is installed for this client yet.</p>'
    client = e(data.get("client", ""))
    sign_out = ('<a class="signout" href="/oauth2/sign_out">Sign out</a>'
                if signed_in_through_gate(data, self_name) else "")
    stamp = now.isoformat(timespec="seconds")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="refresh" content="{int(refresh)}"><title>{client} · AgencyStack</title>'
            f'<link rel="stylesheet" href="/static/style.css"></head><body><header class="top"><div>'
            f'<h1>{client}</h1><p>Your services, checked every few seconds · updated '
            f'<time datetime="{stamp}" title="{stamp}">{e(now.strftime("%H:%M:%S"))} UTC</time></p></div>'
            f'{sign_out}</header>'
            f'<main>{problem}{empty}<section class="cards">{"".join(cards)}</section></main>'
            f'<footer>AgencyStack dashboard · <a href="/api/dashboard.json">JSON</a></footer></body></html>')


def _size(n) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def handler(health: Health, refresh: int, usage=None, self_name: str | None = None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "agencystack-dashboard"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = urllib.parse.urlsplit(self.path).path
            if path == "/healthz":
                return self._send(200, "text/plain; charset=utf-8", b"ok\n")
            if path == "/api/dashboard.json":
                return self._send(200, "application/json", json.dumps(api(health, usage), indent=2).encode())
            if path == "/static/style.css":
                return self._send(200, "text/css; charset=utf-8", (HERE / "style.css").read_bytes())
            if path in ("/", "/index.html"):
                return self._send(200, "text/html; charset=utf-8", page(api(health, usage), refresh, self_name).encode())
            return self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def _load_usage():
    """usage.py beside this file, whether it runs as a script (python3 -I: no script directory on sys.path) or as
    agencystack_dashboard.web.server (agencystack dashboard serve)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("agencystack_dashboard_usage", HERE / "usage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--document", required=True, type=Path, help="the client's dashboard.json")
    parser.add_argument("--listen", default="127.0.0.1:8090", help="address:port to serve on")
    parser.add_argument("--probe", choices=("internal", "url", "edge"), default="internal",
                        help="internal: the component's service on the shared network (in the container); "
                             "url: its public URL; edge: its public URL sent to --edge with its Host header")
    parser.add_argument("--edge", default="127.0.0.1", help="where the edge answers (--probe edge)")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--max-age", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--refresh", type=int, default=15, help="seconds between page reloads")
    parser.add_argument("--credentials", type=Path, default=None,
                        help="the secrets of the cards' usage requests (credentials.json; never the document)")
    parser.add_argument("--usage-ttl", type=float, default=300.0, help="seconds usage figures are cached")
    parser.add_argument("--self", dest="self_name", default=None, metavar="COMPONENT",
                        help="the dashboard's own component in the document: its SSO state says whether this page "
                             "is behind the client's sign-in gate (then it links the gate's sign-out)")
    parser.add_argument("--usage-retry", type=float, default=60.0, help="seconds before a failed fetch is retried")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    health = Health(args.document, mode=args.probe, edge=args.edge, interval=args.interval, max_age=args.max_age,
                    timeout=args.timeout)
    health.start()
    usage = _load_usage().Usage(args.document, args.credentials, mode=args.probe, edge=args.edge, ttl=args.usage_ttl,
                                retry=args.usage_retry, read_document=read_document)
    usage.start()
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), handler(health, args.refresh, usage, args.self_name))
    print(f"serving the dashboard of {args.document} on http://{host or '0.0.0.0'}:{port}/", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
