"""Usage figures for the dashboard's cards, fetched server-side and cached (standard library only).

A component's entry may carry ``usage`` (published, no secret): what to ask -- ``url`` (public) and ``internal``
(its service on the edge network), ``path``, ``method``, a JSON ``body``, ``figures`` (column name -> label) and
``credential``: the NAME of the secret to send as ``Authorization: Bearer``. The secret's value is read from the
credentials file (``--credentials``: ``<root>/dashboards-private/<client>/credentials.json``, mounted read-only into
this container alone, never into the published document). The answer is read as PostHog's query API answers
(``results``: rows, ``columns``: their names; components/posthog/tests/data/posthog-query-api).

Every ``ttl`` seconds per card (default 300), by a background thread: the page never waits for an API. A refusal
(HTTP 401/403), a redirect (a login in front of the API), another status, no answer or an unexpected body is one
line on the card; it is asked again after ``retry`` seconds. Secret values never appear in a result.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer to report, not to follow
        return None


class Usage:
    """The cached figures of every card with a ``usage`` request: {(component, entry index): result}."""

    def __init__(self, document: Path, credentials: Path | None, *, mode: str, edge: str = "127.0.0.1",
                 ttl: float = 300.0, retry: float = 60.0, timeout: float = 10.0, read_document=None):
        self.document, self.credentials, self.mode, self.edge = document, credentials, mode, edge
        self.ttl, self.retry, self.timeout = ttl, retry, timeout
        self.read_document = read_document
        self.results: dict[tuple[str, int], dict] = {}
        self.lock = threading.Lock()
        self.opener = urllib.request.build_opener(_NoRedirect)

    def start(self, every: float = 2.0) -> None:
        def loop() -> None:
            while True:
                try:
                    self.refresh_due()
                except Exception as exc:  # noqa: BLE001 - the fetcher must outlive any one bad document
                    print(f"usage: {type(exc).__name__}", file=sys.stderr)
                time.sleep(every)

        threading.Thread(target=loop, daemon=True, name="usage").start()

    def _secrets(self) -> dict:
        if self.credentials is None:
            return {}
        try:
            found = json.loads(Path(self.credentials).read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def refresh_due(self) -> None:
        """Fetch every card whose result is missing or stale (failed ones after ``retry`` seconds)."""
        doc = self.read_document(self.document)
        secrets = None
        now = time.time()
        for component in doc.get("components", []):
            for index, entry in enumerate(component.get("entries") or []):
                spec = entry.get("usage")
                if not isinstance(spec, dict):
                    continue
                key = (component["name"], index)
                with self.lock:
                    last = self.results.get(key)
                if last and last.get("spec") == spec and now - last["fetched_at"] < (
                        self.ttl if last["state"] == "ok" else self.retry):
                    continue
                if secrets is None:
                    secrets = self._secrets()
                value = (secrets.get(component["name"]) or {}).get(spec.get("credential", ""))
                if value:
                    result = self.fetch(spec, value)
                elif self.credentials is None:
                    result = {"state": "failed", "error": "shown by the installed dashboard only (agencystack "
                                                          "install dashboard), which holds the key"}
                else:
                    result = {"state": "failed", "error": f"{spec.get('credential')} is not in the dashboard's "
                                                          "credentials yet (written after the client's next action)"}
                result.update(fetched_at=time.time(), spec=spec)
                with self.lock:
                    self.results[key] = result

    def fetch(self, spec: dict, secret: str) -> dict:
        """One request: {"state": "ok", "figures": {label: number}} or {"state": "failed", "error": one line}."""
        source = spec.get("source") or "the API"
        base = (spec.get("internal") if self.mode == "internal" else None) or spec.get("url") or ""
        if not base.startswith(("http://", "https://")):
            return {"state": "failed", "error": f"{source}: no address to ask (the component has no URL)"}
        url = base.rstrip("/") + spec.get("path", "/")
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                   "Accept": "application/json", "User-Agent": "agencystack-dashboard"}
        if self.mode == "edge":  # on the host: to the edge, with the URL's host as Host header
            parts = urllib.parse.urlsplit(url)
            headers["Host"] = parts.netloc
            url = urllib.parse.urlunsplit((parts.scheme, f"{self.edge}:{parts.port or 80}", parts.path, parts.query,
                                           ""))
        body = json.dumps(spec.get("body") or {}).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method=spec.get("method", "POST"))
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                data = json.loads(answer.read(1_000_000))
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                why = f"{source} refused the key (HTTP {exc.code}): check {spec.get('credential')} and its scope"
            elif 300 <= exc.code < 400:
                why = f"{source} answered HTTP {exc.code} (a redirect: a login in front of the API?)"
            else:
                why = f"{source} answered HTTP {exc.code}"
            return {"state": "failed", "error": why}
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return {"state": "failed", "error": f"{source} unreachable: {getattr(reason, 'strerror', None) or reason}"}
        except ValueError:
            return {"state": "failed", "error": f"{source} answered something that is not JSON"}
        try:
            return {"state": "ok", "figures": read_figures(data, spec.get("figures") or {})}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return {"state": "failed", "error": f"{source} answered an unexpected shape ({type(exc).__name__})"}

    def of(self, component: str, index: int) -> dict:
        with self.lock:
            found = dict(self.results.get((component, index)) or {})
        if not found:
            return {"state": "unknown", "error": "not fetched yet", "fetched_at": None, "age": None}
        found.pop("spec", None)
        found["age"] = round(time.time() - found["fetched_at"], 1)
        return found


def read_figures(data: dict, figures: dict[str, str]) -> dict[str, int | float]:
    """The first row of ``results``, by ``columns`` when the answer names them, else in ``figures``' order."""
    row = data["results"][0]
    columns = data.get("columns") or list(figures)
    named = dict(zip(columns, row, strict=False))
    values = {}
    for column, label in figures.items():
        value = named[column]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(column)
        values[label] = value
    return values
