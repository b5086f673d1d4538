"""Usage figures on the dashboard's cards (PostHog's events and unique users): fetched by the dashboard's server
(components/dashboard/agencystack_dashboard/web/usage.py), server-side and cached, with the secret read from the
credentials file only, a one-line error on the card when the API refuses the key or cannot be reached.

The real PostHog cannot run here (no registry to pull its images): its query API is played by a stand-in that
answers only what validates against upstream's own schema (components/posthog/tests/query_api.py, the vendored
schema and its commit in components/posthog/tests/data/posthog-query-api/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from types import MappingProxyType

from agencystack import DashboardContext
from agencystack.testing import free_port
from agencystack_dashboard.web import server as web_server
from agencystack_dashboard.web.usage import Usage
from components.posthog.tests.query_api import StandInQueryApi

KEY = "phx_" + "u" * 43
COLUMNS = ["events_24h", "users_24h", "events_7d", "users_7d"]
SERVER = Path(web_server.__file__)


def _document(tmp_path: Path, agencystack_context, agencystack_plugins, internal: str) -> tuple[Path, Path]:
    """The client's document with PostHog's card as its plugin makes it (its internal address: the stand-in), and
    the credentials file the core writes beside it (the entry's secrets, taken out of the document)."""
    loaded = agencystack_context("posthog", client="acme", flags={"POSTHOG_PERSONAL_API_KEY": KEY})
    context = DashboardContext(client="acme", component=agencystack_plugins.component("posthog"),
                               settings=loaded.settings, manifest=MappingProxyType(
                                   {"health": {"internal": f"{internal}/_health"}}),
                               url="http://posthog.acme.localhost", installed=("posthog",))
    entries = [asdict(e) for e in agencystack_plugins.dashboard_entries(context)]
    secrets = {k: v for e in entries for k, v in e.pop("secrets").items()}
    document = {"schema": "agencystack.dashboard", "version": 1, "client": "acme", "generated_at": "now",
                "components": [{"name": "posthog", "version": "1", "url": "http://posthog.acme.localhost/",
                                "health": None, "last_action": {}, "sso": None, "last_backup": None,
                                "entries": entries, "entries_error": None}]}
    (tmp_path / "data").mkdir()
    (tmp_path / "private").mkdir(mode=0o700)
    path = tmp_path / "data" / "dashboard.json"
    path.write_text(json.dumps(document))
    credentials = tmp_path / "private" / "credentials.json"
    credentials.write_text(json.dumps({"posthog": secrets}))
    assert KEY not in path.read_text()
    return path, credentials


def _usage(document: Path, credentials: Path | None, **kwargs) -> Usage:
    return Usage(document, credentials, mode="internal", read_document=web_server.read_document, **kwargs)


def test_figures_are_asked_once_per_ttl_with_the_key_as_bearer(tmp_path, agencystack_context, agencystack_plugins):
    with StandInQueryApi(KEY, [42, 7, 300, 25], COLUMNS) as api:
        document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        usage = _usage(document, credentials, ttl=0.5)
        usage.refresh_due()
        usage.refresh_due()  # within the ttl: from the cache
        assert len(api.requests) == 1 and api.problems == []
        found = usage.of("posthog", 0)
        assert found["state"] == "ok", found
        assert found["figures"] == {"Events, last 24 h": 42, "Unique users, last 24 h": 7,
                                    "Events, last 7 days": 300, "Unique users, last 7 days": 25}
        request = api.requests[0]
        assert request["headers"]["Authorization"] == f"Bearer {KEY}"
        assert request["body"]["query"]["kind"] == "HogQLQuery"
        time.sleep(0.6)
        usage.refresh_due()  # stale: asked again
        assert len(api.requests) == 2


def test_figures_follow_the_answers_column_names(tmp_path, agencystack_context, agencystack_plugins):
    with StandInQueryApi(KEY, [25, 300, 7, 42], list(reversed(COLUMNS))) as api:
        document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        usage = _usage(document, credentials)
        usage.refresh_due()
        assert usage.of("posthog", 0)["figures"]["Events, last 24 h"] == 42


def test_a_refused_key_is_one_line_on_the_card_without_the_key(tmp_path, agencystack_context, agencystack_plugins):
    with StandInQueryApi("phx_another_key", [1, 1, 1, 1], COLUMNS) as api:
        document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        usage = _usage(document, credentials, retry=60)
        usage.refresh_due()
        usage.refresh_due()  # a failure is retried after `retry` seconds, not on every pass
        found = usage.of("posthog", 0)
        assert len(api.requests) == 1
    assert found["state"] == "failed" and "\n" not in found["error"]
    assert found["error"] == ("PostHog's query API refused the key (HTTP 401): check POSTHOG_PERSONAL_API_KEY "
                              "and its scope")
    assert KEY not in json.dumps(found)


def test_an_unreachable_api_and_an_unexpected_answer_are_one_line_each(tmp_path, agencystack_context,
                                                                       agencystack_plugins):
    port = free_port()
    document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, f"http://127.0.0.1:{port}")
    usage = _usage(document, credentials, timeout=2)
    usage.refresh_due()
    found = usage.of("posthog", 0)
    assert found["state"] == "failed" and found["error"].startswith("PostHog's query API unreachable: ")
    with StandInQueryApi(KEY, raw=b"<html>login</html>") as api:
        (tmp_path / "data" / "dashboard.json").write_text(
            (tmp_path / "data" / "dashboard.json").read_text().replace(f"127.0.0.1:{port}", api.url[7:]))
        usage = _usage(document, credentials)
        usage.refresh_due()
    assert usage.of("posthog", 0)["error"] == "PostHog's query API answered something that is not JSON"


def test_without_the_credentials_file_the_card_says_so_and_nothing_is_asked(tmp_path, agencystack_context,
                                                                            agencystack_plugins):
    with StandInQueryApi(KEY, [1, 1, 1, 1], COLUMNS) as api:
        document, _ = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        usage = _usage(document, tmp_path / "nowhere.json")
        usage.refresh_due()
        assert api.requests == []
    assert "POSTHOG_PERSONAL_API_KEY is not in the dashboard's credentials" in usage.of("posthog", 0)["error"]


def _get(url: str, process: subprocess.Popen, until, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                data = answer.read().decode()
            if until(data):
                return data
        except OSError:
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{url}: not as expected within {timeout} s"
        time.sleep(0.2)


def _serve(document: Path, credentials: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard's own server.py as its container runs it (python3 -I, internal probes), on loopback."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-I", str(SERVER), "--document", str(document), "--listen",
                                f"127.0.0.1:{port}", "--probe", "internal", "--interval", "1", "--credentials",
                                str(credentials)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PATH": os.environ.get("PATH", "")})
    return process, f"http://127.0.0.1:{port}"


def test_usage_figures_from_a_stand_in_posthog_query_api_no_registry_for_real_posthog(
        tmp_path, agencystack_context, agencystack_plugins):
    with StandInQueryApi(KEY, [1234, 56, 78901, 234], COLUMNS) as api:
        document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        process, base = _serve(document, credentials)
        try:
            data = json.loads(_get(f"{base}/api/dashboard.json", process,
                                   lambda d: '"state": "ok"' in d and '"figures"' in d))
            [card] = data["components"][0]["entries"]
            assert card["figures"]["figures"] == {"Events, last 24 h": 1234, "Unique users, last 24 h": 56,
                                                  "Events, last 7 days": 78901, "Unique users, last 7 days": 234}
            page = _get(f"{base}/", process, lambda d: 'data-usage="ok"' in d)
            assert "<dt>Events, last 7 days</dt><dd>78,901</dd>" in page
            assert "<dt>Unique users, last 24 h</dt><dd>56</dd>" in page
            for _ in range(3):  # the page and the API read the cache: PostHog is asked once per ttl (300 s)
                _get(f"{base}/", process, lambda d: True)
            assert len(api.requests) == 1 and api.problems == []
            assert api.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
            assert KEY not in page and KEY not in json.dumps(data)
        finally:
            process.terminate()
            out, err = process.communicate(timeout=10)
        assert KEY not in out + err


def test_a_refused_key_shows_on_the_real_servers_page_no_registry_for_real_posthog(
        tmp_path, agencystack_context, agencystack_plugins):
    with StandInQueryApi("phx_not_this_one", [1, 1, 1, 1], COLUMNS, status=401) as api:
        document, credentials = _document(tmp_path, agencystack_context, agencystack_plugins, api.url)
        process, base = _serve(document, credentials)
        try:
            page = _get(f"{base}/", process, lambda d: 'data-usage="failed"' in d)
        finally:
            process.terminate()
            process.communicate(timeout=10)
    assert ("Usage figures: PostHog&#x27;s query API refused the key (HTTP 401): check POSTHOG_PERSONAL_API_KEY "
            "and its scope") in page
