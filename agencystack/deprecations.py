"""The plugin API's deprecations: what still works but warns, since which API version, when it goes, and what
replaces it. One immutable table (no registry to mutate at run time).

A deprecated member keeps working for at least one minor API version (:data:`agencystack.PLUGIN_API_VERSION`) and
warns with a :class:`DeprecationWarning` naming the member, the replacement and, when it can be told, the plugin
(the module that used it): pytest shows it in the plugin's own tests. ``agencystack components list`` and
``agencystack doctor`` name each plugin whose hook implementations use one, once (:meth:`Plugins.warnings
<agencystack.plugin_host.Plugins.warnings>`, which asks :func:`read_by` of each implementation). This module imports
nothing of the core: the plugin host and the contexts import it.
The contract test (tests/test_plugin_api.py) lets a recorded member go or change only when it is listed here.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import CodeType


class Deprecation(NamedTuple):  # a named tuple, not a dataclass: components list imports this module
    """One deprecated part of the plugin API.

    ``what``: the member as the record names it (``DashboardContext.base``, ``hook dashboard_entries``);
    ``since``/``removal``: plugin API versions; ``replacement``: what to use instead; ``hook`` and ``member``: the
    hook whose implementations are checked for reading ``context.<member>`` (empty: not detectable statically)."""

    what: str
    since: str
    removal: str
    replacement: str
    hook: str = ""
    member: str = ""

    def message(self, who: str = "") -> str:
        by = f" (used by {who})" if who else ""
        return (f"{self.what} is deprecated since plugin API {self.since}, removed in {self.removal}: "
                f"{self.replacement}{by}")


DEPRECATIONS: tuple[Deprecation, ...] = (
    Deprecation("DashboardContext.base", "1.1.0", "2.0.0",
                "dashboard_entries is targeted at the component's plugin: use context.component, context.settings "
                "and context.installed (the Nov-27 broadcast contract, a context of the client with the global "
                "settings as 'base')", hook="dashboard_entries", member="base"),
    Deprecation("dashboard_entries(context without component)", "1.1.0", "2.0.0",
                "call the hook with an agencystack.DashboardContext of one installed component (the Nov-27 "
                "contract called it with a context of the client: client and base)"),
    Deprecation("LifecycleContext.facts", "1.1.0", "2.0.0", "use context.record_fact(key, value)", member="facts"),
    Deprecation("LifecycleContext.redactor", "1.1.0", "2.0.0", "use context.add_secret(*values)",
                member="redactor"),
    Deprecation("LifecycleContext.plugins", "1.1.0", "2.0.0",
                "use context.components (the known components by name)", member="plugins"),
)


def find(what: str, table: Iterable[Deprecation] = DEPRECATIONS) -> Deprecation | None:
    return next((d for d in table if d.what == what), None)


def warn(what: str, *, who: str = "", depth: int = 2) -> None:
    """Warn that ``what`` (an entry of :data:`DEPRECATIONS`) was used, naming ``who`` (a plugin), else the module
    ``depth`` frames up (the plugin's code that used it)."""
    deprecation = find(what)
    assert deprecation is not None, what
    frame = sys._getframe(depth)
    who = who or frame.f_globals.get("__name__", "")
    warnings.warn(deprecation.message(who), DeprecationWarning, stacklevel=depth + 1)


def from_core(depth: int = 2) -> bool:
    """Whether the code ``depth`` frames up is the core's own (which may use a member it deprecated for plugins)."""
    name = sys._getframe(depth).f_globals.get("__name__", "")
    return name == "agencystack" or name.startswith("agencystack.")


def read_by(hook: str, function: Callable[..., object]) -> list[Deprecation]:
    """The deprecated context members that ``function``, an implementation of ``hook``, reads (found in its code,
    without calling it)."""
    code = getattr(function, "__code__", None)
    return [d for d in DEPRECATIONS if d.member and (not d.hook or d.hook == hook)
            and _reads_attribute(code, d.member)]


def _reads_attribute(code: CodeType | None, name: str) -> bool:
    """Whether ``code`` (or a function nested in it) loads the attribute ``name``: its names table first (cheap),
    then its instructions, so a global or an import of that name does not count."""
    if code is None:
        return False
    nested = [c for c in code.co_consts if hasattr(c, "co_code")]
    if name in code.co_names:
        import dis

        if any(i.argval == name and i.opname in ("LOAD_ATTR", "LOAD_METHOD") for i in dis.get_instructions(code)):
            return True
    return any(_reads_attribute(c, name) for c in nested)
