"""The dashboard registry document: one versioned JSON file per client, ``<root>/clients/<client>/dashboard.json``,
rewritten atomically after every lifecycle action (the lifecycle wrapper calls :func:`refresh`) and after a backup's
archive is complete. It is what the agency dashboard shows; docs/dashboard.md documents the schema
(``tests/test_dashboard_registry.py`` checks the document against it).

The document holds no secret: plugin entries pass through the redactor, and settings are never copied into it.
A copy is published in ``<root>/dashboards/<client>/dashboard.json`` (:meth:`StateRoot.dashboard_published`), a
directory holding nothing else, so that a dashboard container can mount it read-only without seeing the client's
settings.

Secrets a tile's server-side fetch needs (``DashboardEntry.secrets``, e.g. PostHog's personal API key for its usage
figures) never enter the document: they go to ``<root>/dashboards-private/<client>/credentials.json`` (0600, owned
by the owner of its directory), and only when a dashboard created that directory (its install does, for its
container's user). Without secrets the file is rewritten empty, so a removed key is gone from it too.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.integrations import DashboardContext
    from agencystack.plugin_host import Plugins
    from agencystack.settings import GlobalSettings

SCHEMA = "agencystack.dashboard"
VERSION = 1


def refresh(context: LifecycleContext) -> None:
    """Rewrite the document of ``context.client`` from what the state root holds now. Never fails the action
    that called it: a problem is logged as a warning."""
    try:
        write(context.plugins, context.global_settings, context.client, redactor=context.redactor)
    except Exception as exc:  # noqa: BLE001 - the dashboard is a view: it must never fail an install
        context.log.warning(f"dashboard document of client {context.client} not written: {exc}")


def write(plugins: Plugins, global_settings: GlobalSettings, client: str, *, redactor: Any = None) -> dict:
    """Build and write the document (under the client's dashboard lock: the last writer saw the newest state)."""
    from agencystack.state import atomic_write, ensure_dir

    root = global_settings.state_root
    with root.dashboard_lock(client, global_settings.lock_timeout):
        document, credentials = _build(plugins, global_settings, client, redactor=redactor)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        ensure_dir(root.client_dir(client).parent, 0o755)
        ensure_dir(root.client_dir(client))
        atomic_write(root.dashboard_file(client), text)
        atomic_write(root.prepare_dashboard_published(client), text, mode=0o644)
        _write_credentials(root.dashboard_credentials(client), credentials)
    return document


def _write_credentials(path, credentials: dict[str, dict[str, str]]) -> None:
    """The secrets of the tiles' fetches, 0600, for the dashboard that prepared ``path``'s directory (if any)."""
    import os

    from agencystack.state import atomic_write

    if not path.parent.is_dir():
        return
    atomic_write(path, json.dumps(credentials, indent=2, sort_keys=True) + "\n", mode=0o600)
    owner = path.parent.stat()
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        os.chown(path, owner.st_uid, owner.st_gid)  # the dashboard container's user reads it, nobody else


def build(plugins: Plugins, global_settings: GlobalSettings, client: str, *, redactor: Any = None) -> dict:
    """The document of ``client`` (see docs/dashboard.md)."""
    return _build(plugins, global_settings, client, redactor=redactor)[0]


def _build(plugins, global_settings, client: str, *, redactor: Any = None) -> tuple[dict, dict[str, dict[str, str]]]:
    """The document, and the secrets its tiles' fetches need by component (kept out of the document)."""
    from agencystack.state import now

    root = global_settings.state_root
    installed = list(root.installed(client))
    names = tuple(found.component for found in installed)
    origin = edge_origin(global_settings)
    credentials: dict[str, dict[str, str]] = {}
    components = [_component(plugins, global_settings, found, names, origin, redactor, credentials)
                  for found in installed]
    return ({"schema": SCHEMA, "version": VERSION, "client": client, "generated_at": now(), "components": components},
            credentials)


def _component(plugins, global_settings, found, names, origin, redactor, credentials) -> dict[str, Any]:
    from agencystack import settings as settings_mod

    manifest = found.read_manifest()
    last = manifest.get("last_action") or {}
    sso = manifest.get("sso") if isinstance(manifest.get("sso"), dict) else None
    entry: dict[str, Any] = {
        "name": found.component,
        "version": manifest.get("version") or "",
        "product_version": "",
        "url": manifest.get("url"),
        "health": manifest.get("health") if isinstance(manifest.get("health"), dict) else None,
        "last_action": {"action": last.get("action"), "outcome": last.get("outcome"), "at": last.get("at"),
                        "error": manifest.get("error") if last.get("outcome") == "failed" else None},
        "sso": {"state": sso.get("state", ""), "detail": sso.get("detail", "")} if sso else None,
        "last_backup": _last_backup(manifest),
        "entries": [],
        "entries_error": None,
    }
    try:
        spec = plugins.component(found.component)
        entry["version"] = entry["version"] or spec.version or ""
        model = spec.settings_model()
        loaded = settings_mod.load(model, global_settings, found.env_file, client=found.client)
        if redactor is not None:
            redactor.add(*loaded.values.secret_values())
        context = _context(spec, found, loaded, manifest, names, origin, global_settings)
        entries = [asdict(e) for e in plugins.dashboard_entries(context)]
        for tile in entries:  # secrets leave the entry before anything else sees it
            secrets = {str(k): str(v) for k, v in (tile.pop("secrets", None) or {}).items() if v}
            if redactor is not None:
                redactor.add(*secrets.values())
            if secrets:
                credentials.setdefault(found.component, {}).update(secrets)
        entry["entries"] = redactor.scrub(entries) if redactor is not None else entries
        entry["product_version"] = next((str(e["product_version"]) for e in entry["entries"]
                                         if e.get("product_version")), "")
    except Exception as exc:  # noqa: BLE001 - one plugin's bug costs its tiles only
        text = f"{type(exc).__name__}: {exc}"
        entry["entries_error"] = redactor.text(text) if redactor is not None else text
        _warn_entries_error(plugins, found, entry["entries_error"])
    return entry


def _warn_entries_error(plugins, found, error: str) -> None:
    """Say on the console (a warning: shown under --json too) which plugin's tiles are missing and why: an author
    must not have to find ``entries_error`` in the document."""
    from agencystack.logging import get_logger

    try:
        who = f"plugin {plugins.owner(found.component).label}"
    except StopIteration:  # its plugin is not loaded (or the name is contested)
        who = "no loaded plugin"
    get_logger(client=found.client, component=found.component).warning(
        f"dashboard: no tile for {found.component} of client {found.client}: {who}: dashboard_entries failed: "
        f"{' '.join(error.split())}")


def contexts(plugins: Plugins, global_settings: GlobalSettings | None, client: str) -> list[DashboardContext]:
    """The :class:`~agencystack.DashboardContext` of each component installed for ``client`` that a plugin
    provides, as the document asks ``dashboard_entries`` with (what a Nov-27 call with a context of the client
    becomes; ``global_settings`` None: this process's)."""
    from agencystack import settings as settings_mod

    global_settings = global_settings if global_settings is not None else settings_mod.GlobalSettings.load()
    installed = [found for found in global_settings.state_root.installed(client)
                 if found.component in plugins.components]
    names = tuple(found.component for found in global_settings.state_root.installed(client))
    origin = edge_origin(global_settings)
    found_contexts = []
    for found in installed:
        spec = plugins.component(found.component)
        loaded = settings_mod.load(spec.settings_model(), global_settings, found.env_file, client=found.client)
        found_contexts.append(_context(spec, found, loaded, found.read_manifest(), names, origin, global_settings))
    return found_contexts


def _context(spec, found, loaded, manifest: dict, names: tuple[str, ...], origin, global_settings) -> DashboardContext:
    from types import MappingProxyType

    from agencystack.integrations import DashboardContext

    return DashboardContext(client=found.client, component=spec, settings=loaded.values.model_copy(),
                            manifest=MappingProxyType(json.loads(json.dumps(manifest))), url=manifest.get("url"),
                            installed=names, edge_origin=origin, _global_settings=global_settings)


def _last_backup(manifest: dict) -> dict[str, Any] | None:
    """The last successful backup as the backup recorded it once its archive was committed (when, the archive, its
    size, plain or encrypted), and whether that file is still on disk as written: no archive is opened here."""
    from pathlib import Path

    last = manifest.get("last_backup")
    if not isinstance(last, dict) or not last.get("archive"):
        return None  # none yet (or recorded by a version that did not note the archive)
    entry = {"at": last.get("at"), "archive": last["archive"], "size": last.get("size"), "verified": False,
             "state": last.get("state", "ok")}
    try:
        size = Path(last["archive"]).stat().st_size
    except OSError:
        return {**entry, "size": None, "state": "missing"}
    if size != last.get("size"):
        return {**entry, "size": size, "state": f"damaged: {size} bytes on disk, {last.get('size')} written"}
    return {**entry, "verified": True}


def edge_origin(global_settings) -> dict[str, Any]:
    """The scheme-deciding facts of this host's edge (``DashboardContext.edge_origin``): its network and published
    ports; empty when the edge's settings cannot be read (URLs are then plain ``http://host/``)."""
    try:
        from agencystack.edge import host_settings

        edge = host_settings(global_settings)
        return {"network": edge.network, "http_port": edge.http_port, "https_port": edge.https_port}
    except Exception:  # noqa: BLE001 - without the edge's settings URLs are plain http://host/
        return {}
