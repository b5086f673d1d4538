"""``agencystack component new NAME [--dir DIR]``: what it writes, and bad input refused before anything is written
(the whole path, pip install to the engine, is tests/test_component_new_engine.py)."""

from __future__ import annotations

import ast
import tomllib


def test_writes_a_complete_distribution(agencystack_run, tmp_path):
    target = tmp_path / "work" / "my-app"
    result = agencystack_run("component", "new", "my-app", "--dir", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote 7 files to {target}:")
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "agencystack-my-app"
    assert project["project"]["entry-points"]["agencystack.components"] == {"my-app": "agencystack_my_app.plugin"}
    for path in target.rglob("*.py"):
        ast.parse(path.read_text(), str(path))  # every file is Python, no placeholder left
        assert "{{" not in path.read_text(), path
    settings = (target / "agencystack_my_app/settings.py").read_text()
    assert 'env_prefix="MY_APP_"' in settings and "generated_secret(hex_token, 24)" in settings
    imported = {(node.module, alias.name) for node in ast.walk(ast.parse(settings))
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ("agencystack", "SettingsConfigDict") in imported  # the public name, not pydantic_settings'
    assert {module for module, _ in imported} <= {"__future__", "typing", "agencystack"}
    assert project["project"]["dependencies"] == ["agencystack"]  # what it imports, agencystack gives
    stack = (target / "agencystack_my_app/stack.py").read_text()
    for part in ("Route(", "PostgresDump(", "VolumeArchive(", "EnvFile()", "HttpProbe(", "ref('MY_APP_DB_PASSWORD')"):
        assert part in stack, part
    assert "def dashboard_entries" in (target / "agencystack_my_app/plugin.py").read_text()
    assert "agencystack.testing" in (target / "tests/test_my_app.py").read_text()


def test_bad_name_or_a_used_directory_is_bad_input(agencystack_run, tmp_path):
    bad = agencystack_run("component", "new", "My_App", "--dir", str(tmp_path / "x"))
    assert bad.exit_code == 2 and bad.stderr.startswith("error: invalid component name 'My_App'")
    assert not (tmp_path / "x").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    used = agencystack_run("component", "new", "app", "--dir", str(tmp_path / "used"))
    assert used.exit_code == 2 and "is not empty" in used.stderr
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["notes.txt"]
