"""A stand-in for PostHog's query API (the real PostHog cannot run here: no registry to pull its images from).

It answers ``POST /api/projects/@current/query/`` like upstream's API as far as the vendored schema says
(tests/data/posthog-query-api): it checks the request body against upstream's ``HogQLQuery`` and refuses to send an
answer that does not validate against upstream's ``HogQLQueryResponse``. It records every request it gets.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = json.loads((Path(__file__).parent / "data" / "posthog-query-api" / "schema-excerpt.json").read_text())


def validator(definition: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{definition}", **SCHEMA})


def answer(row: list[Any], columns: list[str]) -> dict[str, Any]:
    """A HogQLQueryResponse with one row (fields as upstream names them; none that needs a definition left out of
    the excerpt), checked against the vendored schema."""
    body = {"results": [row], "columns": columns, "types": [[c, "UInt64"] for c in columns], "hasMore": False,
            "query": "stand-in", "hogql": "stand-in"}
    validator("HogQLQueryResponse").validate(body)
    return body


class StandInQueryApi:
    """``with StandInQueryApi(key, row, columns) as api``: ``api.url``, ``api.requests`` (path, headers, body)."""

    def __init__(self, key: str, row: list[Any] | None = None, columns: list[str] | None = None, *,
                 status: int = 200, raw: bytes | None = None):
        self.key, self.status, self.raw = key, status, raw
        self.body = answer(row, columns) if row is not None else None
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def __enter__(self) -> StandInQueryApi:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                sent = json.loads(self.rfile.read(length) or b"{}")
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers), "body": sent})
                if self.path != "/api/projects/@current/query/":
                    return self._send(404, b'{"detail": "Not found."}')
                if self.headers.get("Authorization") != f"Bearer {stand_in.key}" or stand_in.status in (401, 403):
                    return self._send(stand_in.status if stand_in.status in (401, 403) else 401,
                                      b'{"type": "authentication_error", "code": "authentication_failed", '
                                      b'"detail": "Personal API key found in request Authorization header is '
                                      b'invalid.", "attr": null}')
                problems = [e.message for e in validator("HogQLQuery").iter_errors(sent.get("query"))]
                stand_in.problems.extend(problems)
                if problems:
                    return self._send(400, json.dumps({"detail": problems[0]}).encode())
                if stand_in.raw is not None:
                    return self._send(stand_in.status, stand_in.raw)
                return self._send(stand_in.status, json.dumps(stand_in.body).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
            self.server.server_close()
