"""The posthog-node tag for the pinned commit, found as upstream's installer finds it: walk first-parent history to
the newest commit whose Node image exists. Real git (a local remote over file://) and a real registry (through the
engine, as a registry mirror would be used); nothing is pulled."""

from __future__ import annotations

import secrets

import pytest

from agencystack import ComponentError, StateRoot
from agencystack_posthog import node_image
from components.posthog.tests.helpers import Counting

pytestmark = pytest.mark.engine


class _S:  # the settings fields node_image reads
    def __init__(self, **kw):
        self.node_tag, self.node_image, self.registry_mirror = "", "posthog/posthog-node", ""
        self.upstream_ref, self.upstream_dir, self.upstream_git = "", "", ""
        self.__dict__.update(kw)


def test_the_newest_node_image_at_or_before_the_ref(history, registry, images, docker_client, tmp_path):
    repo = f"agencystack-test-{secrets.token_hex(3)}/posthog-node"
    registry.push(docker_client, images["busybox"], f"{repo}:{history['node']}")
    s = _S(node_image=repo, registry_mirror=f"{registry.address}/", upstream_ref=history["pinned"],
           upstream_git=history["url"])
    engine, said = Counting(), []
    state = StateRoot(tmp_path)
    assert node_image.image(s, state) == f"{registry.address}/{repo}:{history['pinned']}"  # not resolved yet
    assert node_image.resolve(s, state, engine, lambda svc, m: said.append(m)) == history["node"]
    assert [a.rsplit(":", 1)[1] for a in engine.asked] == [history["pinned"], history["node"]]  # newest first
    assert node_image.image(s, state) == f"{registry.address}/{repo}:{history['node']}"  # every command agrees
    assert any(history["node"][:12] in m for m in said)
    assert node_image.resolve(s, state, engine) == history["node"] and len(engine.asked) == 2  # kept per ref
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_a_local_checkout_supplies_the_history(history, registry, images, docker_client, tmp_path):
    repo = f"agencystack-test-{secrets.token_hex(3)}/posthog-node"
    registry.push(docker_client, images["busybox"], f"{repo}:{history['node']}")
    s = _S(node_image=repo, registry_mirror=f"{registry.address}/", upstream_ref=history["pinned"],
           upstream_dir=str(history["work"]))
    state = StateRoot(tmp_path)
    assert node_image.resolve(s, state, Counting()) == history["node"]


def test_no_node_image_in_reach_says_what_to_set(history, registry, tmp_path):
    s = _S(node_image="agencystack-test/never-pushed", registry_mirror=f"{registry.address}/",
           upstream_ref=history["pinned"], upstream_git=history["url"])
    state = StateRoot(tmp_path)
    with pytest.raises(ComponentError, match=r"no .*never-pushed image exists for .* set POSTHOG_NODE_TAG"):
        node_image.resolve(s, state, Counting())
    assert not node_image.cache_file(state, history["pinned"]).exists()


def test_an_unreachable_registry_says_what_to_set(history, tmp_path):
    s = _S(registry_mirror="127.0.0.1:1/", upstream_ref=history["pinned"], upstream_git=history["url"])
    state = StateRoot(tmp_path)
    with pytest.raises(ComponentError, match=r"cannot ask the registry .*\(set POSTHOG_NODE_TAG to skip the lookup\)"):
        node_image.resolve(s, state, Counting())


def test_the_operators_tag_is_used_as_given(tmp_path):
    s = _S(node_tag="release-1", upstream_ref="a" * 40)
    state = StateRoot(tmp_path)
    assert node_image.resolve(s, state, engine=None) == "release-1"
    assert node_image.image(s, state) == "posthog/posthog-node:release-1"
