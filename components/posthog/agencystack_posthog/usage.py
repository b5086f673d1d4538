"""PostHog's usage figures on the agency dashboard: events and unique users of the last 24 hours and 7 days, asked
from PostHog's query API by the dashboard's server (server-side, cached) with the operator's personal API key
(``POSTHOG_PERSONAL_API_KEY``, a secret: it travels in ``DashboardEntry.secrets``, never in the document).

The request follows upstream's query API (vendored in tests/data/posthog-query-api, see its README):
``POST /api/projects/@current/query/`` -- ``@current`` is the project of the key's user (upstream's
``posthog/api/routing.py`` resolves it to ``request.user.team``), so no project id has to be configured -- with
``Authorization: Bearer <key>`` and the body ``{"query": {"kind": "HogQLQuery", "query": ...}}``; the answer's
``results`` holds the rows, ``columns`` their names.
"""

from __future__ import annotations

from typing import Any

CREDENTIAL = "POSTHOG_PERSONAL_API_KEY"
PATH = "/api/projects/@current/query/"
#: one row: the figures by the column names below (unique users: distinct person_id, as PostHog's own insights);
#: plain functions only (sum, if, count DISTINCT, now, INTERVAL), no ClickHouse combinators
HOGQL = ("SELECT sum(if(timestamp >= now() - INTERVAL 1 DAY, 1, 0)) AS events_24h, "
         "count(DISTINCT if(timestamp >= now() - INTERVAL 1 DAY, person_id, NULL)) AS users_24h, "
         "count() AS events_7d, count(DISTINCT person_id) AS users_7d "
         "FROM events WHERE timestamp >= now() - INTERVAL 7 DAY")
FIGURES = {"events_24h": "Events, last 24 h", "users_24h": "Unique users, last 24 h",
           "events_7d": "Events, last 7 days", "users_7d": "Unique users, last 7 days"}


def how_to_add(client: str) -> str:
    """What the card says without a key: where to make one and the command that saves it."""
    return ("Usage figures (events and unique users, 24 h / 7 d): create a personal API key with the query:read "
            "scope in PostHog (Settings > Personal API keys) and save it for this client: agencystack install "
            f"posthog -c {client} --set {CREDENTIAL}=<your key> (a secret: kept in the client's .env, 0600; "
            "never shown, logged or published).")


def spec(public: str, internal: str | None) -> dict[str, Any]:
    """What the dashboard's server asks (``DashboardEntry.usage``): no secret, only the credential's name."""
    return {"kind": "http-json-query", "credential": CREDENTIAL, "auth": "bearer", "method": "POST", "path": PATH,
            "url": public, "internal": internal, "body": {"query": {"kind": "HogQLQuery", "query": HOGQL,
                                                                     "name": "agencystack dashboard usage"}},
            "figures": FIGURES, "source": "PostHog's query API"}


def internal_origin(manifest) -> str | None:
    """``http://<project>-web-1:8000`` from the routed service's probe address the core recorded (the dashboard's
    container reaches PostHog there over the edge network, without passing the SSO gate)."""
    from urllib.parse import urlsplit

    internal = (manifest.get("health") or {}).get("internal") if isinstance(manifest.get("health"), dict) else None
    if not internal:
        return None
    parts = urlsplit(internal)
    return f"{parts.scheme}://{parts.netloc}"
