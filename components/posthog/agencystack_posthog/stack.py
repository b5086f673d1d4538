"""PostHog's stack, built from its settings (data only; the engine applies it)."""

from __future__ import annotations

from agencystack import Stack


def build(settings, client: str) -> Stack:
    return Stack()
