"""Lazy exports for package ``__init__`` modules (PEP 562): a name is imported when first used, then cached."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, names: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """``__getattr__, __dir__ = exports(__name__, {"Name": "pkg.module"}, globals())``; a name mapped to the
    submodule of that name (``{"lifecycle": "pkg.lifecycle"}``) exports the module itself."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = import_module(module)
        value = imported if module == f"{package}.{name}" else getattr(imported, name)  # a public submodule
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | {k for k in namespace if not k.startswith("_")})

    return __getattr__, __dir__
