"""Fixtures of the core's tests: third-party plugin distributions installed with pip for real, once per session.

The real-engine test bed (tests/engine/fixtures.py) is loaded by the repository's conftest.py, for the component
distributions' tests as well; shared helpers are in tests/helpers.py and the public agencystack.testing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import on_path, pip_install

FIXTURES = Path(__file__).parent / "fixtures"
collect_ignore = ["compat"]  # a distribution of its own: tests/test_compat_fixture.py installs it and runs its tests


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the fixture distributions (tests/fixtures/thirdparty, tests/fixtures/broken) are
    pip-installed, exactly as a user would install a third-party plugin; put it on sys.path/PYTHONPATH to use it."""
    return pip_install(tmp_path_factory.mktemp("plugin-site"), FIXTURES / "thirdparty", FIXTURES / "broken")


@pytest.fixture
def with_plugins(plugin_site: Path, monkeypatch: pytest.MonkeyPatch, agencystack_env: Path) -> Path:
    """In-process and subprocess runs see the fixture plugins (entry points are scanned on sys.path)."""
    return on_path(plugin_site, monkeypatch)
