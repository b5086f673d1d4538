"""Backup and restore commands (see agencystack.backup)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Backup commands arrive with the backup room."""
