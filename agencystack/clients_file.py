"""The clients file of a bulk install (``agencystack install demo-core --clients clients.yaml``)::

    clients:
      - id: acme
        domain: acme.com          # the client's hosts: posthog.acme.com, auth.acme.com, dashboard.acme.com
        settings:                 # optional: as --set would give them, routed to the component they name
          POSTHOG_GEOIP_URL: ""
      - id: globex
        domain: globex.io

A top-level list of the same entries is accepted too. Parsed with PyYAML's safe loader; anything else is bad input
(UsageError, exit 2: nothing is installed for anyone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agencystack import names
from agencystack.errors import UsageError


@dataclass(frozen=True)
class ClientSpec:
    id: str
    domain: str | None = None
    settings: dict[str, str] = field(default_factory=dict)


def load(path: Path) -> list[ClientSpec]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"clients file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read clients file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise UsageError(f"clients file {path} is not valid YAML{line}") from None
    entries = data.get("clients") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"clients file {path}: expected a list of clients under 'clients:' (id, domain, settings)")
    found: list[ClientSpec] = []
    for number, entry in enumerate(entries, 1):
        where = f"clients file {path}, client {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise UsageError(f"{where}: expected a mapping with an 'id' (and 'domain', 'settings')")
        unknown = sorted(set(entry) - {"id", "domain", "settings"})
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: id, domain, settings)")
        client = names.client_id(str(entry["id"]))
        domain = names.domain(str(entry["domain"])) if entry.get("domain") is not None else None
        settings = entry.get("settings") or {}
        if not isinstance(settings, dict):
            raise UsageError(f"{where}: 'settings' must be a mapping of KEY: VALUE")
        pairs = names.setting_pairs([f"{k}={'' if v is None else v}" for k, v in settings.items()])
        found.append(ClientSpec(client, domain, pairs))
    seen: set[str] = set()
    for spec in found:
        if spec.id in seen:
            raise UsageError(f"clients file {path}: client {spec.id!r} is listed twice")
        seen.add(spec.id)
    return found
