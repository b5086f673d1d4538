"""The agency dashboard component (public API of agencystack only): see README.md."""
