"""Fixtures of the PostHog distribution's tests (the test bed's are loaded by the repository's conftest.py)."""

from __future__ import annotations

import pytest

from components.posthog.tests.helpers import checkout, git, serve


@pytest.fixture
def history(tmp_path):
    """A remote whose first-parent line is: node (touches nodejs/), docs, pinned; the latest commit first."""
    work = checkout(tmp_path / "work")
    (work / "nodejs").mkdir()
    (work / "nodejs/index.ts").write_text("export {}\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "node change")
    node = git(work, "rev-parse", "HEAD")
    (work / "README.md").write_text("docs\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "docs")
    pinned = git(work, "rev-parse", "HEAD")
    return {"url": serve(work, tmp_path / "posthog.git"), "work": work, "node": node, "pinned": pinned}
