"""Which tag of each of PostHog's Rust images (capture, feature-flags, personhog, cymbal, ...) goes with the pinned
upstream commit.

Upstream's hobby file names them ``ghcr.io/posthog/posthog/<name>:master``: a tag that moves every day, while the
app and Node images are pinned to the ref, so the schema they expect drifts apart. Upstream's Rust image workflow
(``.github/workflows/rust-docker-build.yml`` with ``_rust-build-images.yml``) also tags every image it builds on
master with docker/metadata-action's ``type=sha`` rule: ``sha-<first 7 hex digits of the commit>``. Like the Node
image, an image is built only for commits that touch it, so the match for the ref is, per image, the newest
first-parent ancestor (at most :data:`DEPTH` commits back) whose ``sha-`` tag exists, found as node_image.py finds
the Node tag: the same git history, each candidate asked of the registry through the engine, the answer kept per
host and ref in ``<root>/cache/posthog-rust-tags/<ref>.json`` so every command names the same images.

``POSTHOG_RUST_TAG`` set by the operator (``master``, a release tag) is used for every Rust image as given; an image
no tag can be found for fails the install with that hint. Before the lookup has run (``agencystack render``), each
image is named with the ref's own ``sha-`` tag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from agencystack import ComponentError
from agencystack_posthog import node_image

if TYPE_CHECKING:
    from agencystack import StateRoot

#: the Rust images the stack runs (service -> image: replay-capture runs capture, cymbal-resolution runs cymbal)
NAMES = ("capture", "capture-logs", "property-defs-rs", "feature-flags", "hypercache-server", "personhog-replica",
         "personhog-router", "cymbal")
SHORT = 7  # docker/metadata-action's type=sha: "sha-" and the short commit id
DEPTH = 200


def tag_for(commit: str) -> str:
    return f"sha-{commit[:SHORT]}"


def cache_file(state_root: StateRoot, ref: str) -> Path:
    return state_root.cache("posthog-rust-tags") / f"{ref}.json"


def _name(settings, name: str, tag: str) -> str:
    return f"{settings.registry_mirror}{settings.rust_registry}/{name}:{tag}"


def _cached(state_root: StateRoot, ref: str) -> dict[str, str]:
    path = cache_file(state_root, ref)
    try:
        found = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def images(settings, state_root: StateRoot) -> dict[str, str]:
    """Each Rust image, named for the stack: the operator's tag, else the one resolved for the ref (else the ref's own
    ``sha-`` tag, before :func:`resolve` has run)."""
    if settings.rust_tag:
        return {name: _name(settings, name, settings.rust_tag) for name in NAMES}
    cached = _cached(state_root, settings.upstream_ref)
    return {name: _name(settings, name, cached.get(name, tag_for(settings.upstream_ref))) for name in NAMES}


def resolve(settings, state_root: StateRoot, engine, progress=lambda service, message: None) -> dict[str, str]:
    """The tag of each Rust image for the ref (cached; see the module docstring); the operator's tag when set."""
    if settings.rust_tag:
        return dict.fromkeys(NAMES, settings.rust_tag)
    ref = settings.upstream_ref
    cached = _cached(state_root, ref)
    if set(NAMES) <= set(cached):
        return {name: cached[name] for name in NAMES}
    progress("capture", f"looking for the Rust images built at or before {ref[:12]}")
    commits = node_image.first_parent_commits(settings, state_root.cache(), depth=DEPTH)
    found: dict[str, str] = {}
    for name in NAMES:
        for commit in commits:
            try:
                published = engine.published(_name(settings, name, tag_for(commit)))
            except ComponentError as exc:  # the registry cannot be asked: say what to set instead
                raise ComponentError(f"{exc} (set POSTHOG_RUST_TAG to skip the lookup)") from None
            if published:
                found[name] = tag_for(commit)
                break
        else:
            raise ComponentError(f"no {settings.registry_mirror}{settings.rust_registry}/{name} image tagged "
                                 f"sha-<commit> exists for {ref[:12]} or its {len(commits) - 1} first-parent "
                                 "ancestors: set POSTHOG_RUST_TAG")
    path = cache_file(state_root, ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{ref}.partial")
    partial.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    partial.replace(path)
    progress("capture", "Rust images for " + ref[:12] + ": " + ", ".join(f"{n}:{t}" for n, t in found.items()))
    return found
