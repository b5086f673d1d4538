"""The plugin API as data: what tests/data/plugin_api.json records and tests/test_plugin_api.py compares the code with.

The record holds the public names of :mod:`agencystack`, every hook (its arguments with their annotations, what it
returns, its dispatch: targeted or broadcast, firstresult) and, walked from the hooks' annotations through every
type they reach (members' types and what methods return; not what a plugin passes in), the public members of
each core type a hook receives or returns -- fields, attributes,
properties and methods, with their types and signatures. Types reached only through a deprecated member are not
walked (they are on their way out). :func:`breaking` says what a new version of the code did to a record: adding is
free; removing, renaming or retyping a member, a hook or an argument, or adding a required field or argument, is a
break unless :mod:`agencystack.deprecations` lists it.

Regenerate after a change that only adds (or with a major API version)::

    python -m agencystack.plugin_api --write tests/data/plugin_api.json
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import json
import pkgutil
import re
import sys
from collections.abc import Iterable
from typing import Any

ROOTS = ("agencystack",)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _index() -> dict[str, list[type]]:
    """Every class defined in a core module, by name (a few names are defined twice: both kept)."""
    import agencystack

    for info in pkgutil.walk_packages(agencystack.__path__, "agencystack."):
        if ".templates" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    found: dict[str, list[type]] = {}
    for name, module in sorted(sys.modules.items()):
        if not (name == "agencystack" or name.startswith("agencystack.")) or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name and value not in found.get(value.__name__, []):
                found.setdefault(value.__name__, []).append(value)
    return found


def _resolve(name: str, near: str, index: dict[str, list[type]]) -> type | None:
    """The core class ``name`` as written in an annotation of module ``near``: that module's own (or imported)
    name first, then the public one, then the only class of that name."""
    module = sys.modules.get(near)
    value = getattr(module, name, None) if module is not None else None
    if isinstance(value, type) and value.__module__.startswith("agencystack"):
        return value
    import agencystack

    if name in agencystack.__all__:
        value = getattr(agencystack, name)
        if isinstance(value, type):
            return value
    candidates = index.get(name, [])
    return candidates[0] if len(candidates) == 1 else None


def _text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _parameters(function: Any, skip_first: bool) -> dict[str, dict[str, Any]]:
    params = list(inspect.signature(function).parameters.values())[1 if skip_first else 0:]
    return {p.name: {"type": _text(p.annotation), "kind": p.kind.name.lower(),
                     "required": p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL,
                                                                                         p.VAR_KEYWORD)}
            for p in params}


def _members(cls: type) -> dict[str, dict[str, Any]]:
    """The public members of ``cls`` and of its bases defined in the core (pydantic's and the standard library's
    own members are theirs, not this API's)."""
    from agencystack import deprecations

    members: dict[str, dict[str, Any]] = {}
    deprecated = {d.what for d in deprecations.DEPRECATIONS}
    if issubclass(cls, enum.Enum):
        return {m.name: {"kind": "enum", "value": repr(m.value)} for m in cls}
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    model_fields = getattr(cls, "model_fields", {}) if isinstance(getattr(cls, "model_fields", None), dict) else {}
    for base in reversed([b for b in cls.__mro__ if b.__module__.startswith("agencystack")]):
        for name, annotation in vars(base).get("__annotations__", {}).items():
            if name.startswith("_") or name == "model_config" or "ClassVar" in str(annotation):
                continue
            required = (fields[name].default is dataclasses.MISSING and fields[name].default_factory
                        is dataclasses.MISSING) if name in fields else (
                model_fields[name].is_required() if name in model_fields else False)
            members[name] = {"kind": "field", "type": _text(annotation), "required": required}
        for name, value in vars(base).items():
            if name.startswith("_") or name in members and members[name]["kind"] == "field":
                continue
            if isinstance(value, property | __import__("functools").cached_property):
                getter = value.fget if isinstance(value, property) else value.func
                members[name] = {"kind": "property", "type": _text(getter.__annotations__.get("return",
                                                                                            inspect.Parameter.empty))}
            elif isinstance(value, staticmethod | classmethod) or inspect.isfunction(value):
                function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                members[name] = {"kind": "classmethod" if isinstance(value, classmethod) else
                                 "staticmethod" if isinstance(value, staticmethod) else "method",
                                 "parameters": _parameters(function, not isinstance(value, staticmethod)),
                                 "returns": _text(function.__annotations__.get("return", inspect.Parameter.empty))}
            else:
                continue
            if f"{cls.__name__}.{name}" in deprecated:
                members[name]["deprecated"] = True
    return dict(sorted(members.items()))


def _referenced(entry: dict[str, Any]) -> Iterable[str]:
    """The annotations of what a plugin *receives* from a member (its type, what it returns): the types of the
    parameters it passes are the plugin's to choose among public names, not walked."""
    for key in ("type", "returns"):
        if entry.get(key):
            yield entry[key]


def current() -> dict[str, Any]:
    """The plugin API of the code as it is now (what :func:`main` writes)."""
    import agencystack
    from agencystack import hookspecs

    index = _index()
    hooks: dict[str, dict[str, Any]] = {}
    queue: list[tuple[str, str]] = []  # (annotation text, module it was written in)
    for name, function in sorted(vars(hookspecs).items()):
        if not (inspect.isfunction(function) and hasattr(function, "agencystack_spec")):
            continue
        hooks[name] = {"arguments": {n: p["type"] for n, p in _parameters(function, False).items()},
                       "returns": _text(function.__annotations__.get("return", inspect.Parameter.empty)),
                       "dispatch": "targeted" if name in hookspecs.TARGETED else "broadcast",
                       "firstresult": bool(function.agencystack_spec["firstresult"])}
        queue += [(t, hookspecs.__name__) for t in [*hooks[name]["arguments"].values(), hooks[name]["returns"]]]
    types: dict[str, dict[str, Any]] = {}
    seen: set[type] = set()
    while queue:
        text, near = queue.pop(0)
        for word in _IDENTIFIER.findall(text):
            cls = _resolve(word, near, index)
            if cls is None or cls in seen:
                continue
            seen.add(cls)
            members = _members(cls)
            types[cls.__name__] = {"module": cls.__module__, "members": members}
            queue += [(t, cls.__module__) for m in members.values() if not m.get("deprecated")
                      for t in _referenced(m)]
    from agencystack.version import PLUGIN_API_VERSION

    return {"plugin_api_version": PLUGIN_API_VERSION,
            "note": "the plugin API (agencystack/plugin_api.py): regenerate with 'python -m agencystack.plugin_api "
                    "--write tests/data/plugin_api.json' after adding; removing or changing needs a deprecation "
                    "(agencystack/deprecations.py) or a major version",
            "public": sorted(agencystack.__all__), "hooks": hooks, "types": dict(sorted(types.items()))}


def breaking(recorded: dict[str, Any], now: dict[str, Any], deprecations: Iterable[Any] = ()) -> list[str]:
    """What ``now`` breaks of ``recorded``, one line each naming the member; what a deprecation lists
    (its ``what``: ``Type.member``, ``hook name``, ``hook name(argument)``, ``public Name``) is allowed."""
    allowed = {d.what for d in deprecations}
    found: list[tuple[str, str]] = []
    for name in recorded["public"]:
        if name not in now["public"]:
            found.append((f"public {name}", f"public name {name} removed"))
    for name, hook in recorded["hooks"].items():
        new = now["hooks"].get(name)
        if new is None:
            found.append((f"hook {name}", f"hook {name} removed"))
            continue
        for key in ("dispatch", "firstresult", "returns"):
            if hook[key] != new[key]:
                found.append((f"hook {name}", f"hook {name}: {key} {hook[key]!r} -> {new[key]!r}"))
        for arg, annotation in hook["arguments"].items():
            if arg not in new["arguments"]:
                found.append((f"hook {name}({arg})", f"hook {name}: argument {arg} removed"))
            elif new["arguments"][arg] != annotation:
                found.append((f"hook {name}({arg})",
                              f"hook {name}: argument {arg} type {annotation!r} -> {new['arguments'][arg]!r}"))
    for type_name, recorded_type in recorded["types"].items():
        new_type = now["types"].get(type_name)
        if new_type is None:
            found.append((type_name, f"type {type_name} removed (or no longer reachable from a hook)"))
            continue
        for member, old in recorded_type["members"].items():
            found += [(f"{type_name}.{member}", line) for line in
                      _member_breaks(f"{type_name}.{member}", old, new_type["members"].get(member))]
        for member, new in new_type["members"].items():
            if member not in recorded_type["members"] and new.get("required"):
                found.append((f"{type_name}.{member}", f"{type_name}.{member} added as a required field"))
    return [line for what, line in found if what not in allowed]


def _member_breaks(where: str, old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
    if new is None:
        return [f"{where} removed"]
    if old["kind"] != new["kind"]:
        return [f"{where}: was a {old['kind']}, now a {new['kind']}"]
    found = []
    for key in ("type", "returns", "value"):
        if old.get(key) != new.get(key):
            found.append(f"{where}: {key} {old.get(key)!r} -> {new.get(key)!r}")
    if not old.get("required") and new.get("required"):
        found.append(f"{where}: now required")
    old_params, new_params = old.get("parameters", {}), new.get("parameters", {})
    for param, spec in old_params.items():
        if param not in new_params:
            found.append(f"{where}: parameter {param} removed")
        elif new_params[param]["type"] != spec["type"]:
            found.append(f"{where}: parameter {param} type {spec['type']!r} -> {new_params[param]['type']!r}")
        elif new_params[param]["required"] and not spec["required"]:
            found.append(f"{where}: parameter {param} now required")
    found += [f"{where}: parameter {param} added as required" for param, spec in new_params.items()
              if param not in old_params and spec["required"]]
    return found


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m agencystack.plugin_api", description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="FILE", help="write the record there (default: print it)")
    args = parser.parse_args(argv)
    text = json.dumps(current(), indent=1, sort_keys=True) + "\n"
    if args.write:
        from pathlib import Path

        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
