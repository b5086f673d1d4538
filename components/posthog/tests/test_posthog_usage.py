"""PostHog's usage figures on the agency dashboard, proven by reading (PostHog itself cannot run here: no registry):
the request the card asks the dashboard to make validates against upstream's own query schema (vendored in
tests/data/posthog-query-api, commit in its README), at the path upstream resolves to the key's project
(``@current``); the key is a secret setting that never enters the entry's published fields; without a key the card
says how to add one."""

from __future__ import annotations

import json
from dataclasses import asdict
from types import MappingProxyType

from agencystack import DashboardContext
from components.posthog.tests.query_api import validator

KEY = "phx_" + "k" * 43  # the shape of a personal API key (posthog.com/tutorials/api-get-insights-persons)


def _entry(agencystack_context, agencystack_plugins, flags=None, manifest=None):
    loaded = agencystack_context("posthog", client="acme", flags=flags or {})
    context = DashboardContext(client="acme", component=agencystack_plugins.component("posthog"),
                               settings=loaded.settings, manifest=MappingProxyType(manifest or {}),
                               url=loaded.public_url(loaded.settings.domain), installed=("posthog",))
    [entry] = agencystack_plugins.dashboard_entries(context)
    return entry


def test_without_a_key_the_card_says_how_to_add_one(agencystack_context, agencystack_plugins):
    entry = _entry(agencystack_context, agencystack_plugins)
    assert entry.usage is None and entry.secrets == {}
    assert "agencystack install posthog -c acme --set POSTHOG_PERSONAL_API_KEY=<your key>" in entry.description
    assert "query:read" in entry.description


def test_with_a_key_the_card_asks_upstreams_query_api_and_keeps_the_key_out_of_its_published_fields(
        agencystack_context, agencystack_plugins):
    entry = _entry(agencystack_context, agencystack_plugins, flags={"POSTHOG_PERSONAL_API_KEY": KEY},
                   manifest={"health": {"url": "http://posthog.acme.localhost/_health",
                                        "internal": "http://acme_posthog-web-1:8000/_health"}})
    assert entry.secrets == {"POSTHOG_PERSONAL_API_KEY": KEY}
    published = {k: v for k, v in asdict(entry).items() if k != "secrets"}
    assert KEY not in json.dumps(published) and KEY not in repr(entry)
    usage = entry.usage
    assert usage["credential"] == "POSTHOG_PERSONAL_API_KEY" and usage["auth"] == "bearer"
    assert (usage["method"], usage["path"]) == ("POST", "/api/projects/@current/query/")
    assert usage["internal"] == "http://acme_posthog-web-1:8000"  # past the edge's SSO gate, on the edge network
    assert usage["url"] == "http://posthog.acme.localhost"
    validator("HogQLQuery").validate(usage["body"]["query"])  # upstream's schema of the query node
    assert set(usage["body"]) == {"query"}
    query = usage["body"]["query"]["query"]
    assert all(f" AS {column}" in query for column in usage["figures"])  # every figure is a named column
    assert "INTERVAL 7 DAY" in query and "INTERVAL 1 DAY" in query and "person_id" in query


def test_the_key_is_a_secret_setting(agencystack_context):
    loaded = agencystack_context("posthog", client="acme", flags={"POSTHOG_PERSONAL_API_KEY": KEY})
    assert KEY in loaded.settings.secret_values()
    assert "POSTHOG_PERSONAL_API_KEY" in loaded.settings.secret_keys()
