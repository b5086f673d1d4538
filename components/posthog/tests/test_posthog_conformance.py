"""PostHog's stack against upstream's own files: every difference from the hobby deployment at the pinned ref is one
the deviation table (agencystack_posthog/deviations.py) explains, and every row still explains something.

No engine: the compose file is rendered as ``install`` writes it (``agencystack render`` prints the same), upstream's
side is read from ``tests/data/posthog-upstream`` (see its README for the commit of each file).
"""

from __future__ import annotations

import pytest
import yaml

from agencystack.testing import compose_document
from agencystack_posthog import deviations, settings
from agencystack_posthog.upstream import cache_dir
from components.posthog.tests.helpers import posthog_context
from components.posthog.tests.posthog_upstream import (DATA, HOBBY, Difference, differences, upstream_routes,
                                                       upstream_services)


@pytest.fixture
def rendered(agencystack_plugins):
    ctx = posthog_context(agencystack_plugins, action="render", domain="analytics.acme.com")
    root = cache_dir(ctx.state_root, ctx.settings.upstream_ref)
    return compose_document(ctx), ctx.stack().routes, str(root)


@pytest.fixture
def found(rendered) -> list[Difference]:
    document, routes, root = rendered
    return differences(document["services"], routes, upstream_root=root)


def test_the_vendored_hobby_file_is_the_pinned_ref():
    readme = (DATA / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `docker-compose.hobby.yml`"))
    assert f"`{settings.UPSTREAM_REF}`" in row  # bump the vendored file with the ref
    assert {"db", "web", "capture", "livestream", "proxy"} <= set(yaml.safe_load(HOBBY.read_text())["services"])


def test_every_difference_from_upstream_is_an_intentional_deviation(found):
    unexplained = [str(d) for d in found if deviations.explain(d.service, d.aspect, d.key) is None]
    assert not unexplained, ("differences from upstream's hobby deployment that deviations.py does not explain "
                             "(match upstream, or add a row with its reason):\n  " + "\n  ".join(unexplained))


def test_every_deviation_row_still_explains_a_difference(found):
    stale = [row for row in deviations.DEVIATIONS if row.aspect not in deviations.OPTIONAL_ASPECTS
             and not any(row.covers(d.service, d.aspect, d.key) for d in found)]
    assert not stale, "rows that explain no difference any more (remove them):\n  " + "\n  ".join(map(str, stale))


def test_every_row_gives_a_reason():
    assert all(len(row.reason) > 20 for row in deviations.DEVIATIONS)


def test_the_comparison_sees_what_it_claims_to(found):
    """The harness itself: upstream's services and proxy table were read, and the aspects are compared."""
    services, _ = upstream_services()
    assert services["web"]["command"] == "/compose/start" and services["worker"]["environment"]["DEPLOYMENT"]
    assert upstream_routes()["/e"] == "capture:3000" and upstream_routes()["*"] == "web:8000"
    assert {d.aspect for d in found} >= {"service", "env-value", "env-extra", "mount", "depends_on", "route"}


def test_an_unexplained_change_fails(rendered):
    """What the test is for: a drift (here a changed command and a dropped env var) is caught."""
    document, routes, root = rendered
    document["services"]["web"]["command"] = ["./bin/docker-server"]
    del document["services"]["worker"]["environment"]["SITE_URL"]
    drift = [d for d in differences(document["services"], routes, upstream_root=root)
             if deviations.explain(d.service, d.aspect, d.key) is None]
    assert {(d.service, d.aspect, d.key) for d in drift} == {("web", "command", ""),
                                                            ("worker", "env-missing", "SITE_URL")}


def test_resource_limits_have_their_row(rendered):
    """Per-service limits (compose deploy.resources / mem_limit) are an intentional deviation as they land."""
    document, routes, root = rendered
    document["services"]["web"]["deploy"] = {"resources": {"limits": {"memory": "2g"}}}
    document["services"]["kafka"]["mem_limit"] = "3g"
    limits = [d for d in differences(document["services"], routes, upstream_root=root) if d.aspect == "resources"]
    assert {d.service for d in limits} >= {"web", "kafka"}
    assert all(deviations.explain(d.service, d.aspect, d.key) for d in limits)
