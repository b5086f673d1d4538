"""The tag of each PostHog Rust image for the pinned commit, found as upstream publishes them: per image, the newest
first-parent commit at or before the ref whose ``sha-<7 hex>`` tag exists. Real git (a local remote over file://)
and a real registry (through the engine, as a registry mirror would be used); nothing is pulled."""

from __future__ import annotations

import json
import secrets

import pytest

from agencystack import ComponentError, StateRoot
from agencystack_posthog import rust_images
from components.posthog.tests.helpers import Counting

pytestmark = pytest.mark.engine


class _S:  # the settings fields rust_images reads
    def __init__(self, **kw):
        self.rust_tag, self.rust_registry, self.registry_mirror = "", "", ""
        self.upstream_ref, self.upstream_dir, self.upstream_git = "", "", ""
        self.__dict__.update(kw)


def test_each_rust_image_gets_the_newest_sha_tag_at_or_before_the_ref(history, registry, images,
                                                                      docker_client, tmp_path):
    repo = f"agencystack-test-{secrets.token_hex(3)}"
    older, pinned = history["node"], history["pinned"]
    for name in rust_images.NAMES:  # capture was rebuilt at the pinned commit; the others only earlier
        registry.push(docker_client, images["busybox"], f"{repo}/{name}:sha-{older[:7]}")
    registry.push(docker_client, images["busybox"], f"{repo}/capture:sha-{pinned[:7]}")
    s = _S(rust_registry=repo, registry_mirror=f"{registry.address}/", upstream_ref=pinned,
           upstream_git=history["url"])
    state = StateRoot(tmp_path)
    assert rust_images.images(s, state)["cymbal"] == f"{registry.address}/{repo}/cymbal:sha-{pinned[:7]}"
    engine = Counting()
    found = rust_images.resolve(s, state, engine)
    assert found["capture"] == f"sha-{pinned[:7]}"
    assert all(found[name] == f"sha-{older[:7]}" for name in rust_images.NAMES if name != "capture")
    assert rust_images.images(s, state)["cymbal"] == f"{registry.address}/{repo}/cymbal:sha-{older[:7]}"
    asked = len(engine.asked)
    assert rust_images.resolve(s, state, engine) == found and len(engine.asked) == asked  # kept per ref
    assert json.loads(rust_images.cache_file(state, pinned).read_text()) == found


def test_an_image_with_no_tag_in_reach_says_what_to_set(history, registry, tmp_path):
    s = _S(rust_registry="agencystack-test/never-pushed", registry_mirror=f"{registry.address}/",
           upstream_ref=history["pinned"], upstream_git=history["url"])
    state = StateRoot(tmp_path)
    with pytest.raises(ComponentError, match=r"no .*never-pushed/capture image tagged sha-<commit> exists for .* "
                                             r"set POSTHOG_RUST_TAG"):
        rust_images.resolve(s, state, Counting())
    assert not rust_images.cache_file(state, history["pinned"]).exists()


def test_the_operators_tag_is_used_as_given(tmp_path):
    s = _S(rust_tag="master", rust_registry="ghcr.io/posthog/posthog", upstream_ref="a" * 40)
    state = StateRoot(tmp_path)
    assert rust_images.resolve(s, state, engine=None) == dict.fromkeys(rust_images.NAMES, "master")
    assert rust_images.images(s, state)["personhog-router"] == "ghcr.io/posthog/posthog/personhog-router:master"
