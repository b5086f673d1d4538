"""What a plugin says about a component it provides: metadata that is cheap to load.

A plugin returns :class:`Component` objects from its ``components`` hook. Nothing here imports pydantic or the
engine, so ``agencystack components list`` and ``--help`` stay fast; the settings model is named by import path
(``"package.module:Class"``) and only imported when a command needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agencystack.settings import ComponentSettings


@dataclass(frozen=True)
class Resources:
    """What the host needs for this component: a hard minimum and upstream's recommendation (a warning)."""

    min_memory_gb: float = 0
    min_cpus: int = 0
    recommended_memory_gb: float = 0
    recommended_cpus: int = 0
    min_disk_gb: float = 0


@dataclass(frozen=True)
class Component:
    """A component a plugin provides.

    name:        the name users type (``agencystack install <name>``): lowercase letters, digits, dashes.
    description: one line for ``components list``.
    settings:    the settings model, a :class:`~agencystack.settings.ComponentSettings` subclass, its import
                 path ``"module:Class"`` (preferred: imported only when needed), or a function returning it.
    requires:    names of components that must be installed first for the same client (e.g. ``("edge",)``): the
                 core's install installs the missing ones first; uninstalling one of them while this component is
                 installed is refused unless forced (:mod:`agencystack.lifecycle`).
    version:     defaults to the version of the distribution that ships the plugin.
    resources:   host minimums the core checks before every install (refused below them, nothing changed);
                 recommendations shown as warnings.
    per_host:    True for components that exist once per host (the edge), not once per client.
    provides:    named capabilities, e.g. ``("sso",)`` for an identity provider (``agencystack sso`` finds it so).
    """

    name: str
    description: str = ""
    settings: str | type | None = None
    requires: tuple[str, ...] = ()
    version: str | None = None
    resources: Resources = field(default_factory=Resources)
    per_host: bool = False
    provides: tuple[str, ...] = ()

    def settings_model(self) -> type[ComponentSettings]:
        """The settings class, imported on first use."""
        from agencystack.settings import ComponentSettings

        model = self.settings
        if model is None:
            return ComponentSettings
        if isinstance(model, str):
            import pkgutil

            model = pkgutil.resolve_name(model)
        if not isinstance(model, type) and callable(model):  # a factory that defines the class on first use
            model = model()
        return model
