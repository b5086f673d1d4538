"""Loading the plugins: one PluginManager with agencystack's hooks, components discovered through entry points.

* Entry point group ``agencystack.components``: each entry point names a module (or object) holding hook
  implementations marked with :data:`agencystack.hookimpl`. Each is loaded on its own; one that fails to import,
  implements a hook that does not exist (a misspelling), or whose ``components`` hook fails is recorded as
  *broken* with its error and skipped -- other commands, ``--help`` included, keep working.
* ``AGENCYSTACK_PLUGINS=name1,name2`` limits which entry points load (empty: none); ``AGENCYSTACK_PLUGINS=-name``
  loads every entry point but the ones named with a ``-``. The core's own plugins (defaults, lifecycle wrappers,
  the edge) always load: they are registered through the same hooks. A name that is no installed entry point (a
  typo) changes nothing else: one ``warning:`` line on stderr names it (and ``Plugins.unknown`` lists it).
* ``AGENCYSTACK_TRACE_PLUGINS=1`` logs every hook call to stderr as one JSON line (hook, the plugins it reached,
  duration, outcome) through pluggy's own hook-call monitoring; unset, nothing is installed and nothing costs.

What was loaded, and every call into it, is the plugin host's (:class:`agencystack.plugin_host.Plugins`).
"""

from __future__ import annotations

import os
import sys
import types
import zlib
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from agencystack import hookspecs
from agencystack.plugin_host import CORE_PLUGINS, PLUGINS_ENV, PluginRecord, Plugins, register_plugin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from agencystack.plugin_host import ClientContexts

ENTRY_POINT_GROUP = "agencystack.components"
TRACE_ENV = "AGENCYSTACK_TRACE_PLUGINS"


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, looking for hooks in a module plugin's own namespace first: pluggy asks
    ``inspect.getattr_static`` about every name ``dir()`` lists (imports, constants, classes), which was most of the
    cost of loading the plugins (of ``components list``). A name that is no function, method, staticmethod or
    classmethod there cannot be a hook; the others get pluggy's own lookup, unchanged."""

    _HOOKABLE = (types.FunctionType, types.MethodType, staticmethod, classmethod)

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if isinstance(plugin, types.ModuleType) and not isinstance(vars(plugin).get(name), self._HOOKABLE):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def parse_hookspec_opts(self, module_or_class: Any, name: str) -> Any:
        if isinstance(module_or_class, types.ModuleType) and not isinstance(vars(module_or_class).get(name),
                                                                            self._HOOKABLE):
            return None
        return super().parse_hookspec_opts(module_or_class, name)


def load(only: Iterable[str] | None = None, *, client_contexts: ClientContexts | None = None) -> Plugins:
    """Build the PluginManager: core plugins first, then every entry point (filtered by AGENCYSTACK_PLUGINS).
    ``client_contexts``: what a Nov-27 ``dashboard_entries`` call is answered with (:meth:`Plugins.dashboard_entries`)."""
    pm = _PluginManager("agencystack")
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        trace(pm)
    records: list[PluginRecord] = []
    owners: dict[str, object] = {}
    claims: dict[str, list[PluginRecord]] = {}

    for module_name in CORE_PLUGINS:
        record = PluginRecord(name=module_name, distribution="agencystack", version=_core_version(), core=True)
        register_plugin(pm, record, owners, lambda m=module_name: import_module(m), claims)
        records.append(record)

    if only is None and PLUGINS_ENV in os.environ:
        only = [n.strip() for n in os.environ[PLUGINS_ENV].split(",") if n.strip()]
    excluded = {n[1:] for n in only or () if n.startswith("-")}
    kept = [n for n in only or () if not n.startswith("-")]
    allowed = set(kept) if only is not None and (kept or not excluded) else None
    found = discover()
    for ep in found:
        if (allowed is not None and ep["name"] not in allowed) or ep["name"] in excluded:
            continue
        record = PluginRecord(name=ep["name"], distribution=ep["distribution"], version=ep["version"],
                              value=ep["value"])
        register_plugin(pm, record, owners, lambda value=ep["value"], r=record: _watching_imports(r, value),
                        claims)
        records.append(record)
    plugins = Plugins(pm, records, owners, claims, client_contexts=client_contexts)
    plugins.unknown = sorted({*kept, *excluded} - {ep["name"] for ep in found})
    if plugins.unknown:
        print(f"warning: {PLUGINS_ENV} names no installed plugin: {', '.join(plugins.unknown)} (installed: "
              f"{', '.join(ep['name'] for ep in found) or 'none'})", file=sys.stderr)
    return plugins


def discover() -> list[dict[str, str]]:
    """The entry points of our group, sorted by name.

    Scanning every installed distribution (importlib.metadata) costs more than the rest of ``components list``;
    the answer is cached per interpreter and search path, keyed by the modification times of the sys.path
    directories, which change whenever a distribution is installed or removed there. The cache is plain text
    (tab-separated; no field of an entry point holds a tab or a newline), so reading it imports nothing.
    """
    dirs = [p for p in dict.fromkeys(sys.path) if p and os.path.isdir(p)]
    key = "".join(f"{p}\t{os.stat(p).st_mtime_ns}\n" for p in [sys.executable, *dirs])
    digest = f"{zlib.crc32(chr(0).join([sys.executable, *dirs]).encode()):08x}"  # names the file; the key decides
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agencystack" / f"ep-{digest}.tsv"
    try:
        cached_key, _, body = cache.read_text().partition("\n\n")
        if cached_key + "\n" == key:
            return [dict(zip(_EP_FIELDS, line.split("\t"), strict=True)) for line in body.splitlines()]
    except (OSError, ValueError):
        pass
    from importlib.metadata import entry_points

    found = sorted(({"name": ep.name, "value": ep.value,
                     "distribution": ep.dist.name if ep.dist else "?",
                     "version": ep.dist.version if ep.dist else "?"}
                    for ep in entry_points(group=ENTRY_POINT_GROUP)), key=lambda e: e["name"])
    lines = ["\t".join(e[f] for f in _EP_FIELDS) for e in found]
    if all(line.count("\t") == len(_EP_FIELDS) - 1 and "\n" not in line for line in lines) and "\n\n" not in key:
        try:
            from agencystack.state import atomic_write

            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache, key + "\n" + "".join(f"{line}\n" for line in lines), mode=0o644)
        except OSError:
            pass  # a read-only home only costs speed
    return found


_EP_FIELDS = ("name", "value", "distribution", "version")


def trace(pm: pluggy.PluginManager, stream: Any = None) -> Callable[[], None]:
    """Log every hook call of ``pm`` to ``stream`` (stderr) as one JSON line: ``hook``, ``component`` (the
    context's, or null), ``plugin`` (the plugins it reached but the core's, comma-separated, or null), ``plugins``
    (every implementation it reached, in call order), ``duration_ms`` and ``outcome`` (``ok``, or
    ``raised <ExceptionType>``: never the message, which may quote a secret), through pluggy's
    ``add_hookcall_monitoring``. Nested calls (a wrapper's ``stack()`` inside ``install``) and threads each have
    their own clock. Returns pluggy's undo."""
    import json
    import threading
    import time

    started = threading.local()

    def before(hook_name: str, impls: Any, kwargs: Any) -> None:
        started.__dict__.setdefault("stack", []).append(time.perf_counter())

    def after(outcome: Any, hook_name: str, impls: Any, kwargs: Any) -> None:
        duration = (time.perf_counter() - started.stack.pop()) * 1000
        target = getattr(getattr(kwargs.get("context"), "component", None), "name", None)
        reached = [impl.plugin_name for impl in reversed(impls)]
        line = {"trace": "hook", "hook": hook_name, "component": target,
                "plugin": ",".join(name for name in reached if name not in CORE_PLUGINS) or None,
                "plugins": reached, "duration_ms": round(duration, 3),
                "outcome": "ok" if outcome.exception is None else f"raised {type(outcome.exception).__name__}"}
        print(json.dumps(line), file=stream or sys.stderr, flush=True)

    return pm.add_hookcall_monitoring(before, after)


def _watching_imports(record: PluginRecord, value: str) -> Any:
    """Load an entry point's object, noting each ``agencystack.*`` module outside the plugin API (anything but
    ``agencystack`` and ``agencystack.testing``) that the plugin's code imports meanwhile (``builtins.__import__``
    is wrapped only while it loads: a function call per import statement). What the process imported before (a
    second load in one process) is not seen again: each command is a process of its own."""
    import builtins

    real = builtins.__import__

    def watching(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        module = real(name, globals, locals, fromlist, level)
        if level == 0 and (name == "agencystack" or name.startswith("agencystack.")) and not (
                importer == "agencystack" or importer.startswith("agencystack.")):
            public = module.__all__ if name == "agencystack" else ()  # the face names its public names itself
            modules = [f"{name}.{n}" for n in fromlist or () if n not in public] if name == "agencystack" \
                else [name]
            record.private_imports.extend(m for m in modules if m != "agencystack.testing"
                                          and m not in record.private_imports)
        return module

    builtins.__import__ = watching
    try:
        return _load_object(value)
    finally:
        builtins.__import__ = real


def _load_object(value: str) -> Any:
    """Import an entry point's object: ``module`` or ``module:attr.path`` (errors surface unchanged)."""
    module, _, attrs = value.partition(":")
    obj = import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj


def _core_version() -> str:
    from agencystack.version import __version__

    return __version__
