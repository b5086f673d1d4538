"""AgencyStack: install and operate self-hosted components for many client tenants on Docker.

This module is the public API for plugin authors (its version: ``PLUGIN_API_VERSION``, CHANGELOG.md's "Plugin
API") -- and nothing a plugin should not touch: components import from ``agencystack`` only (``tests/test_public_api.py`` fails when anything under ``components/`` imports another core
module), and their tests from ``agencystack.testing`` as well. What may change between releases, and how, is
docs/plugins.md's compatibility policy. Names are imported lazily (PEP 562) so that ``agencystack --help`` and
plugin discovery stay fast: ``from agencystack import hookimpl``
costs only pluggy; the stack model loads pydantic when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agencystack.lazy import exports
from agencystack.version import PLUGIN_API_VERSION, __version__

_PUBLIC = {
    "hookimpl": "agencystack.markers",
    "Component": "agencystack.component",
    "Bundle": "agencystack.bundle",
    "Resources": "agencystack.component",
    "ComponentSettings": "agencystack.settings",
    "GlobalSettings": "agencystack.settings",
    "generated_secret": "agencystack.settings",
    "generate": "agencystack.settings",
    "hex_token": "agencystack.settings",
    "urlsafe_token": "agencystack.settings",
    "Domain": "agencystack.settings",
    "PortNumber": "agencystack.settings",
    "ImageRef": "agencystack.settings",
    "EmptyMeans": "agencystack.settings",
    "SettingsConfigDict": "agencystack.settings",
    "SecretStr": "agencystack.settings",
    "lifecycle": "agencystack.lifecycle",
    "Stack": "agencystack.stack",
    "Service": "agencystack.stack",
    "Volume": "agencystack.stack",
    "Network": "agencystack.stack",
    "Mount": "agencystack.stack",
    "Port": "agencystack.stack",
    "HealthCheck": "agencystack.stack",
    "postgres_healthcheck": "agencystack.stack",
    "Logging": "agencystack.stack",
    "Limits": "agencystack.limits",
    "Route": "agencystack.stack",
    "HttpProbe": "agencystack.stack",
    "PostgresDump": "agencystack.stack",
    "VolumeArchive": "agencystack.stack",
    "CommandDump": "agencystack.stack",
    "EnvFile": "agencystack.stack",
    "ref": "agencystack.stack",
    "LifecycleContext": "agencystack.context",
    "run": "agencystack.lifecycle",
    "LogRequest": "agencystack.results",
    "LogLine": "agencystack.results",
    "Outcome": "agencystack.results",
    "ComponentStatus": "agencystack.results",
    "ServiceStatus": "agencystack.results",
    "State": "agencystack.results",
    "SsoApplication": "agencystack.integrations",
    "SsoGrant": "agencystack.integrations",
    "SsoState": "agencystack.integrations",
    "DashboardEntry": "agencystack.integrations",
    "DashboardContext": "agencystack.integrations",
    "StateRoot": "agencystack.state",
    "ComponentDir": "agencystack.state",
    "atomic_write": "agencystack.state",
    "ensure_dir": "agencystack.state",
    "parse_env": "agencystack.state",
    "AgencyStackError": "agencystack.errors",
    "ComponentError": "agencystack.errors",
    "UsageError": "agencystack.errors",
    "ArchiveWriter": "agencystack.backup.archive",
    "ArchiveReader": "agencystack.backup.archive",
}

__all__ = sorted([*_PUBLIC, "__version__", "PLUGIN_API_VERSION"])


__getattr__, __dir__ = exports(__name__, _PUBLIC, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from agencystack.backup.archive import ArchiveReader, ArchiveWriter
    from agencystack.bundle import Bundle
    from agencystack.component import Component, Resources
    from agencystack.context import LifecycleContext
    from agencystack.errors import AgencyStackError, ComponentError, UsageError
    from agencystack.integrations import DashboardContext, DashboardEntry, SsoApplication, SsoGrant, SsoState
    from agencystack.lifecycle import run
    from agencystack.limits import Limits
    from agencystack.markers import hookimpl
    from agencystack.results import ComponentStatus, LogLine, LogRequest, Outcome, ServiceStatus, State
    from agencystack import lifecycle
    from agencystack.settings import (ComponentSettings, Domain, EmptyMeans, GlobalSettings, ImageRef, PortNumber,
                                      SecretStr, SettingsConfigDict, generate, generated_secret, hex_token,
                                      urlsafe_token)
    from agencystack.stack import (CommandDump, EnvFile, HealthCheck, HttpProbe, Logging, Mount, Network, Port,
                                   PostgresDump, Route, Service, Stack, Volume, VolumeArchive, postgres_healthcheck,
                                   ref)
    from agencystack.state import ComponentDir, StateRoot, atomic_write, ensure_dir, parse_env
