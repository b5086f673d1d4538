"""Opt-in, on a host that reaches the registries: the real PostHog stack, installed by the CLI, takes an event sent
with PostHog's Python SDK and gives it back through its API.

    pip install posthog && AGENCYSTACK_LIVE_POSTHOG=1 pytest components/posthog/tests/test_posthog_live.py

The install fetches upstream's files from GitHub at the pinned commit and the GeoIP database from PostHog's CDN,
looks up the Node image tag on Docker Hub and each Rust image's sha-<commit> tag on ghcr.io, as on a customer's host,
then runs the migrate job (upstream's own bin/migrate) before web starts. Optional: AGENCYSTACK_LIVE_UPSTREAM_DIR (a
checkout at the pinned ref, for a host without GitHub), AGENCYSTACK_LIVE_DOMAIN (default posthog-live.localhost),
AGENCYSTACK_LIVE_RUST_TAG (sets POSTHOG_RUST_TAG, e.g. master, if a Rust image has no tag near the ref),
EDGE_HTTP_PORT/EDGE_HTTPS_PORT for the edge. Before the install, `agencystack render posthog -c live` shows the
compose file it will write. First boot takes 10-45 minutes (ClickHouse and Django migrations).

What this proves that nothing else here can: PostHog's own images boot from the rendered stack (migrations, persons
schema, the Postgres first start without init scripts, ClickHouse with upstream's executable user scripts), and an
event goes capture -> Kafka -> ingestion -> ClickHouse -> the query API.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from agencystack.testing import container_name, run_cli
from tests.helpers import use_test_engine

LIVE = os.environ.get("AGENCYSTACK_LIVE_POSTHOG") == "1"
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not LIVE, reason="live PostHog test is opt-in (AGENCYSTACK_LIVE_POSTHOG=1): it pulls PostHog's "
                                        "images, and no registry is reachable here"),
]

BOOTSTRAP = """
import json
from posthog.models import PersonalAPIKey, User
from posthog.models.personal_api_key import hash_key_value
from posthog.models.utils import generate_random_token_personal
org, team, user = User.objects.bootstrap("AgencyStack live", "live@agencystack.test", "Live-test-password-1")
key = generate_random_token_personal()
PersonalAPIKey.objects.create(user=user, label="live", secure_value=hash_key_value(key), scopes=["*"])
print(json.dumps({"team": team.id, "token": team.api_token, "key": key}))
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    upstream = os.environ.get("AGENCYSTACK_LIVE_UPSTREAM_DIR")
    rust_tag = os.environ.get("AGENCYSTACK_LIVE_RUST_TAG")
    pytest.importorskip("posthog", reason="pip install posthog (PostHog's Python SDK) for the live test")
    tmp = tmp_path_factory.mktemp("live")
    domain = os.environ.get("AGENCYSTACK_LIVE_DOMAIN", "posthog-live.localhost")
    with pytest.MonkeyPatch.context() as mp:
        use_test_engine(mp, tmp / "root")
        result = run_cli("install", "posthog", "--client-id", "live", "--domain", domain,
                         *(("--set", f"POSTHOG_UPSTREAM_DIR={upstream}") if upstream else ()),
                         *(("--set", f"POSTHOG_RUST_TAG={rust_tag}") if rust_tag else ()))
        assert result.exit_code == 0, result.output
        try:
            yield result.stdout.strip().splitlines()[-1]  # the URL the install reports
        finally:
            run_cli("uninstall", "posthog", "--client-id", "live", "--purge", "--yes")


def test_event_sent_with_the_sdk_comes_back_through_the_api(live, docker_client):
    import urllib.request

    from posthog import Posthog

    web = docker_client.containers.get(container_name("live_posthog", "web"))
    code, out = web.exec_run(["python", "manage.py", "shell", "-c", BOOTSTRAP])
    assert code == 0, out.decode()
    creds = json.loads(out.decode().strip().splitlines()[-1])
    distinct_id = f"agencystack-{uuid.uuid4()}"
    client = Posthog(creds["token"], host=live)
    client.capture(distinct_id=distinct_id, event="agencystack live test", properties={"source": "pytest"})
    client.flush()
    query = {"query": {"kind": "HogQLQuery",
                      "query": f"select event from events where distinct_id = '{distinct_id}'"}}
    deadline = time.monotonic() + 600  # ingestion is asynchronous: capture -> kafka -> plugins -> clickhouse
    while True:
        request = urllib.request.Request(f"{live}/api/projects/{creds['team']}/query/", method="POST",
                                         data=json.dumps(query).encode(),
                                         headers={"Authorization": f"Bearer {creds['key']}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            rows = json.load(response).get("results") or []
        if rows:
            assert rows[0][0] == "agencystack live test"
            return
        assert time.monotonic() < deadline, "the event did not come back within 10 minutes"
        time.sleep(5)
