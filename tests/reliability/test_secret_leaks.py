"""The secret-leak scan, last in the suite: every secret the suite's clients ever had must appear nowhere but in
their .env files (and the databases): not in any captured CLI output, log file, rendered compose file, manifest,
nor in any container's command, entrypoint or labels on the engine."""

from __future__ import annotations

import pytest

from tests.reliability.bed import COMPONENT, record

pytestmark = [pytest.mark.engine, pytest.mark.reliability]


def test_no_secret_value_leaks_anywhere(bed):
    client = bed.client("leak")
    bed.cli("install", COMPONENT, "-c", client)  # at least one live deployment to inspect
    bed.cli("logs", COMPONENT, "-c", client, "--tail", "50")
    bed.cli("plan", COMPONENT, "-c", client, "--json")
    bed.saved(client)
    assert bed.secrets, "the suite saw no secret: nothing to scan for"
    places: dict[str, str] = {f"output #{i}": text for i, text in enumerate(bed.outputs)}
    for base in (bed.root, bed.log_dir, bed.work / "spare-root"):
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if path.is_file() and path.name != ".env" and "backups" not in path.parts and path.suffix != ".agsb":
                places[str(path)] = path.read_text(errors="replace")
    for container in bed.docker.containers.list(all=True, filters={"label": f"io.agencystack.component={COMPONENT}"}):
        config = container.attrs["Config"]
        places[f"container {container.name}"] = repr((config.get("Cmd"), config.get("Entrypoint"),
                                                      config.get("Labels"), container.attrs.get("Args")))
    leaks = sorted({where for where, text in places.items() for secret in bed.secrets if secret in text})
    record("secret-leak scan (places scanned x secrets)", len(places) * len(bed.secrets),
           len(places) * len(bed.secrets) - len(leaks), f"({len(bed.secrets)} secret values, {len(places)} places)")
    assert not leaks, leaks
    bed.purge(client)
