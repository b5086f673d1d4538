"""``agencystack component new NAME``: a complete component distribution from the templates in
``agencystack/templates/component`` -- pyproject with the entry point, plugin module, settings with one generated
secret, a stack (web service, PostgreSQL, route, backups, HTTP probe), a dashboard entry and tests using the test
kit -- that installs with pip, is discovered, installs on the engine and passes its own tests unchanged.

Templates are plain files with ``{{placeholder}}`` marks (no template engine: nothing in them needs one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agencystack import names
from agencystack.errors import UsageError

TEMPLATES = Path(__file__).parent / "templates" / "component"


@dataclass(frozen=True)
class Names:
    """Every spelling of a component's name the templates need."""

    name: str  # demo-app: what users type
    dist: str  # agencystack-demo-app: the distribution
    package: str  # agencystack_demo_app: the Python package
    prefix: str  # DEMO_APP_: its settings' prefix
    title: str  # Demo App
    settings_class: str  # DemoAppSettings
    db_name: str  # demo_app: the database and its user

    @classmethod
    def of(cls, name: str) -> Names:
        names.component_name(name)
        snake = name.replace("-", "_")
        title = name.replace("-", " ").title()
        return cls(name=name, dist=f"agencystack-{name}", package=f"agencystack_{snake}", prefix=f"{snake.upper()}_",
                   title=title, settings_class=f"{title.replace(' ', '')}Settings", db_name=snake)


def target_path(template: Path, spelled: Names) -> Path:
    """Where a template lands: ``package/`` becomes the package, ``test_component`` the component's test."""
    relative = template.relative_to(TEMPLATES).with_suffix("")  # without .tmpl
    parts = [spelled.package if part == "package" else part for part in relative.parts]
    parts[-1] = parts[-1].replace("test_component", f"test_{spelled.db_name}")
    return Path(*parts)


def render(text: str, spelled: Names) -> str:
    for key, value in vars(spelled).items():
        text = text.replace("{{" + key + "}}", value)
    return text


def files(name: str) -> dict[Path, str]:
    """The distribution of component ``name``: relative path -> content."""
    spelled = Names.of(name)
    return {target_path(t, spelled): render(t.read_text(), spelled)
            for t in sorted(TEMPLATES.rglob("*.tmpl"))}


def create(name: str, directory: Path) -> list[Path]:
    """Write the distribution into ``directory`` (new, or empty); returns the files written. Bad input (an invalid
    name, a directory that holds anything) is refused before anything is written."""
    content = files(name)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(f"{directory} already exists and is not empty: choose another --dir")
    written = []
    for relative, text in content.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
