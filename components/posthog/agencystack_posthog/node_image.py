"""Which ``posthog/posthog-node`` tag goes with the pinned upstream commit.

PostHog publishes an app image for every commit on master, but a Node image only for commits that touch the Node
code. Upstream's installer therefore walks first-parent history back from the chosen commit (at most
:data:`DEPTH` commits) to the newest one whose Node image exists. The same here, when ``POSTHOG_NODE_TAG`` is empty:

* the commits come from git: the operator's checkout (``POSTHOG_UPSTREAM_DIR``), or a shallow fetch of commit
  objects only (no trees, no blobs: a few kilobytes) from ``POSTHOG_UPSTREAM_GIT``;
* each candidate is asked of the registry through the engine (:meth:`Driver.published`), so a registry mirror and
  the engine's credentials apply, and nothing is pulled;
* the answer is kept per host and ref in ``<root>/cache/posthog-node-tag/<ref>``: every command that builds the
  stack (status, backup, uninstall) names the same image, and an upgrade to another ref resolves again.

``POSTHOG_NODE_TAG`` set by the operator is used as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agencystack import ComponentError, UsageError
from agencystack_posthog.upstream import git, shallow

if TYPE_CHECKING:
    from agencystack import StateRoot

DEPTH = 100


def cache_file(state_root: StateRoot, ref: str) -> Path:
    return state_root.cache("posthog-node-tag") / ref


def image(settings, state_root: StateRoot) -> str:
    """The Node image for the stack: the operator's tag, else the one resolved for the ref (else the ref itself,
    before :func:`resolve` has run)."""
    tag = settings.node_tag
    if not tag:
        cached = cache_file(state_root, settings.upstream_ref)
        tag = cached.read_text().strip() if cached.is_file() else settings.upstream_ref
    return f"{settings.registry_mirror}{settings.node_image}:{tag}"


def first_parent_commits(settings, cache_dir: Path, depth: int = DEPTH) -> list[str]:
    """Up to ``depth`` commits, newest first, on the first-parent line ending at the upstream ref."""
    ref = settings.upstream_ref
    args = ("rev-list", "--first-parent", f"--max-count={depth}", ref)
    if settings.upstream_dir:
        source = Path(settings.upstream_dir)
        if not (source / ".git").exists():
            raise UsageError(f"POSTHOG_UPSTREAM_DIR {source} is not a git checkout, so the posthog-node image for "
                             f"{ref[:12]} cannot be looked up: set POSTHOG_NODE_TAG")
        return git(*args, cwd=source).split()
    with shallow(settings.upstream_git, ref, cache_dir, depth=depth, filter="tree:0", what="the history of PostHog",
                 hint="or set the image tag settings") as work:
        return git(*args, cwd=work).split()


def resolve(settings, state_root: StateRoot, engine, progress=lambda service, message: None) -> str:
    """The Node image tag for the ref (cached; see the module docstring); the operator's tag when set."""
    if settings.node_tag:
        return settings.node_tag
    ref = settings.upstream_ref
    cached = cache_file(state_root, ref)
    if cached.is_file():
        return cached.read_text().strip()
    progress("plugins", f"looking for the newest {settings.node_image} image at or before {ref[:12]}")
    for commit in first_parent_commits(settings, state_root.cache()):
        candidate = f"{settings.registry_mirror}{settings.node_image}:{commit}"
        try:
            found = engine.published(candidate)
        except ComponentError as exc:  # the registry cannot be asked: say what to set instead
            raise ComponentError(f"{exc} (set POSTHOG_NODE_TAG to skip the lookup)") from None
        if found:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f".{ref}.partial")
            partial.write_text(commit + "\n")
            partial.replace(cached)
            progress("plugins", f"{settings.node_image}:{commit[:12]} is the newest Node image for {ref[:12]}")
            return commit
    raise ComponentError(f"no {settings.registry_mirror}{settings.node_image} image exists for {ref[:12]} or its "
                         f"{DEPTH - 1} first-parent ancestors: set POSTHOG_NODE_TAG")
