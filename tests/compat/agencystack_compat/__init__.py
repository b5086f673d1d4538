# FROZEN COMPATIBILITY FIXTURE (plugin API 1.0.0, 2026-11-27): never edited to follow the code; only a major
# plugin API version may drop it, with an entry in CHANGELOG.md ("Plugin API").
"""Compat: an AgencyStack component written on 2026-11-27 from docs/plugins.md."""
